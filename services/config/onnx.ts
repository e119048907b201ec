/**
 * The onnxruntime settings every inference worker role reads (whisperx, xtts): one definition, so a
 * name, default or bound cannot drift between the roles.
 */
import { int, oneOf } from './env';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;

export const ONNX_RUNTIME_ENV = {
  executionProvider: oneOf('EXECUTION_PROVIDER', EXECUTION_PROVIDERS, {
    doc: 'onnxruntime execution provider; a cuda worker whose CUDA provider cannot load fails its startup (no CPU fallback)',
    default: 'cpu',
  }),
  intraOpThreads: int('ORT_INTRA_OP_THREADS', { doc: 'onnxruntime threads inside one operator', default: 2, min: 1, max: 256 }),
  interOpThreads: int('ORT_INTER_OP_THREADS', { doc: 'onnxruntime threads across operators', default: 1, min: 1, max: 64 }),
} as const;
