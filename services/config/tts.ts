/** Env of the `xtts` worker role (TTS): voice directory, execution provider, chunking. */
import { int, str } from './env';
import { ONNX_RUNTIME_ENV } from './onnx';

export const TTS_ENV = {
  modelDir: str('MODEL_DIR', {
    doc: 'Directory of Piper/VITS voices: <voice>/model.onnx + model.onnx.json, or <voice>.onnx + <voice>.onnx.json',
    default: '/models',
  }),
  ...ONNX_RUNTIME_ENV,
  defaultVoice: str('TTS_DEFAULT_VOICE', {
    doc: 'Voice used when a request names none (or an unknown OpenAI voice name); empty means the first listed',
    default: '',
  }),
  maxInputChars: int('TTS_MAX_INPUT_CHARS', { doc: 'Longest accepted input text', default: 4096, min: 1, max: 100000 }),
} as const;
