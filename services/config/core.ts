/** Env of a verdict core (role `core`, StatefulSet core4). */
import { int, str } from './env';

export const CORE_ENV = {
  modelsDir: str('CORE_MODELS_DIR', { doc: 'Directory holding core-<ordinal>/model.onnx + config.json', default: 'models/core' }),
  ordinal: int('CORE_ORDINAL', {
    doc: "This core's ordinal (StatefulSet pod index); -1 = parse the trailing number of POD_NAME",
    default: -1,
    min: -1,
    max: 63,
  }),
  threads: int('CORE_THREADS', { doc: 'onnxruntime intra-op threads', default: 1, min: 1, max: 64 }),
  batchSize: int('CORE_BATCH_SIZE', { doc: 'Most transcripts classified in one ONNX run (micro-batch)', default: 16, min: 1, max: 512 }),
} as const;
