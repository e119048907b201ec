/**
 * An ONNX text classifier of one core: `model.onnx` (input `features` float32 [N, dim] → output
 * `probabilities` float32 [N, labels]) and `config.json` (labels, feature spec). Any model with
 * the same inputs/outputs can replace the shipped ones.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { HashedNgramSpec, writeFeatures } from './features';

export interface CoreModelConfig {
  readonly labels: readonly string[];
  readonly features: HashedNgramSpec;
  readonly input: string;
  readonly output: string;
  /** Informational: training seed, sample size, training accuracy. */
  readonly training?: Record<string, unknown>;
}

export interface Verdict {
  readonly label: string;
  readonly confidence: number;
  readonly core: number;
}

export interface IntentClassifierOptions {
  readonly dir: string;
  readonly core: number;
  /** @default 1 */
  readonly threads?: number;
  /** Largest batch; the feature buffer is allocated once at this size. @default 16 */
  readonly maxBatch?: number;
}

export class IntentClassifier {
  private buffer: Float32Array;
  // The reused feature buffer is shared: one ONNX run at a time.
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly config: CoreModelConfig,
    readonly core: number,
    private readonly maxBatch: number,
  ) {
    this.buffer = new Float32Array(maxBatch * config.features.dim);
  }

  static async load(opts: IntentClassifierOptions): Promise<IntentClassifier> {
    const o = { threads: 1, maxBatch: 16, ...opts };
    const config = JSON.parse(await readFile(join(o.dir, 'config.json'), 'utf8')) as CoreModelConfig;
    if (!Array.isArray(config.labels) || !config.labels.length) throw new Error(`${o.dir}/config.json: 'labels' must be a non-empty array`);
    if (config.features?.type !== 'hashed-ngrams')
      throw new Error(`${o.dir}/config.json: unsupported features.type ${JSON.stringify(config.features?.type)}`);
    const session = await ort.InferenceSession.create(join(o.dir, 'model.onnx'), {
      executionProviders: ['cpu'],
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    if (!session.inputNames.includes(config.input)) {
      await session.release();
      throw new Error(`${o.dir}/model.onnx has inputs [${session.inputNames.join(', ')}], config.json expects '${config.input}'`);
    }
    if (!session.outputNames.includes(config.output)) {
      await session.release();
      throw new Error(`${o.dir}/model.onnx has outputs [${session.outputNames.join(', ')}], config.json expects '${config.output}'`);
    }
    return new IntentClassifier(session, config, o.core, o.maxBatch);
  }

  /** Classifies a batch of utterances in one ONNX run (chunks of maxBatch). */
  async classify(texts: readonly string[]): Promise<Verdict[]> {
    const out: Verdict[] = [];
    for (let i = 0; i < texts.length; i += this.maxBatch) out.push(...(await this.run(texts.slice(i, i + this.maxBatch))));
    return out;
  }

  /** Full probability rows (evaluation). */
  async probabilities(texts: readonly string[]): Promise<Float32Array[]> {
    const rows: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.maxBatch) rows.push(...(await this.runRaw(texts.slice(i, i + this.maxBatch))));
    return rows;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }

  private async run(texts: readonly string[]): Promise<Verdict[]> {
    const rows = await this.runRaw(texts);
    return rows.map((p) => {
      let best = 0;
      for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
      return { label: this.config.labels[best], confidence: Number(p[best].toFixed(6)), core: this.core };
    });
  }

  private runRaw(texts: readonly string[]): Promise<Float32Array[]> {
    const next = this.tail.then(() => this.runExclusive(texts));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async runExclusive(texts: readonly string[]): Promise<Float32Array[]> {
    const dim = this.config.features.dim;
    const n = texts.length;
    const view = this.buffer.subarray(0, n * dim);
    view.fill(0);
    texts.forEach((t, r) => writeFeatures(t, this.config.features, this.buffer, r));
    const input = new ort.Tensor('float32', view, [n, dim]);
    const res = await this.session.run({ [this.config.input]: input });
    const probs = res[this.config.output];
    const k = this.config.labels.length;
    if (probs.dims.length !== 2 || probs.dims[1] !== k) {
      throw new Error(`model output '${this.config.output}' has dims [${probs.dims.join(', ')}], expected [${n}, ${k}]`);
    }
    const data = probs.data as Float32Array;
    return Array.from({ length: n }, (_, r) => data.slice(r * k, (r + 1) * k));
  }
}
