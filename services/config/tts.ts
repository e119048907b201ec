/** Env of the `xtts` worker role (TTS): voice directory, execution provider, chunking. */
import { int, oneOf, str } from './env';
import { EXECUTION_PROVIDERS } from './asr';

export const TTS_ENV = {
  modelDir: str('MODEL_DIR', {
    doc: 'Directory of Piper/VITS voices: <voice>/model.onnx + model.onnx.json, or <voice>.onnx + <voice>.onnx.json',
    default: '/models',
  }),
  executionProvider: oneOf('EXECUTION_PROVIDER', EXECUTION_PROVIDERS, {
    doc: 'onnxruntime execution provider; a cuda worker whose CUDA provider cannot load fails its startup (no CPU fallback)',
    default: 'cpu',
  }),
  intraOpThreads: int('ORT_INTRA_OP_THREADS', { doc: 'onnxruntime threads inside one operator', default: 2, min: 1, max: 256 }),
  interOpThreads: int('ORT_INTER_OP_THREADS', { doc: 'onnxruntime threads across operators', default: 1, min: 1, max: 64 }),
  defaultVoice: str('TTS_DEFAULT_VOICE', {
    doc: 'Voice used when a request names none (or an unknown OpenAI voice name); empty means the first listed',
    default: '',
  }),
  maxInputChars: int('TTS_MAX_INPUT_CHARS', { doc: 'Longest accepted input text', default: 4096, min: 1, max: 100000 }),
} as const;
