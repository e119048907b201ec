import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface ModelLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface ModelLoadOptions {
  /** Path of the .onnx file. */
  path: string;
  /** @default 'cpu' */
  executionProvider?: ExecutionProvider;
  /** @default 1 */
  intraOpThreads?: number;
  /** @default 1 */
  interOpThreads?: number;
  /** Receives the CPU-fallback warning. @default - console */
  logger?: ModelLogger;
}

const DEFAULTS = { executionProvider: 'cpu' as ExecutionProvider, intraOpThreads: 1, interOpThreads: 1 };

const consoleLogger: ModelLogger = { warn: (obj, msg) => console.warn(msg, obj) };

/**
 * One onnxruntime InferenceSession per model file per process, shared by every stream/job that uses it
 * (ORT sessions are safe to run concurrently) and released when the last holder disposes it.
 */
export class OnnxModel {
  private static readonly cache = new Map<string, Promise<OnnxModel>>();
  private refs = 1;

  private constructor(
    readonly session: ort.InferenceSession,
    readonly path: string,
    /** The provider actually in use — `cpu` after a fallback. */
    readonly provider: ExecutionProvider,
    private readonly key: string,
  ) {}

  static async load(opts: ModelLoadOptions): Promise<OnnxModel> {
    // `??` per field: an explicit undefined in opts must not erase a default.
    const o = {
      ...opts,
      executionProvider: opts.executionProvider ?? DEFAULTS.executionProvider,
      intraOpThreads: opts.intraOpThreads ?? DEFAULTS.intraOpThreads,
      interOpThreads: opts.interOpThreads ?? DEFAULTS.interOpThreads,
    };
    const key = `${o.path}|${o.executionProvider}|${o.intraOpThreads}|${o.interOpThreads}`;
    const cached = OnnxModel.cache.get(key);
    if (cached) {
      const m = await cached;
      m.refs++;
      return m;
    }
    const p = OnnxModel.create(o, key);
    OnnxModel.cache.set(key, p);
    p.catch(() => OnnxModel.cache.delete(key));
    return p;
  }

  private static async create(o: Required<Omit<ModelLoadOptions, 'logger'>> & { logger?: ModelLogger }, key: string): Promise<OnnxModel> {
    const base: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: o.intraOpThreads,
      interOpNumThreads: o.interOpThreads,
      graphOptimizationLevel: 'all',
    };
    if (o.executionProvider === 'cuda') {
      try {
        const s = await ort.InferenceSession.create(o.path, { ...base, executionProviders: ['cuda', 'cpu'] });
        return new OnnxModel(s, o.path, 'cuda', key);
      } catch (err) {
        // The CPU build of onnxruntime-node has no CUDA provider library; serving slower beats not serving.
        (o.logger ?? consoleLogger).warn(
          { model: o.path, requested: 'cuda', using: 'cpu', err: (err as Error).message.split('\n')[0] },
          'CUDA execution provider unavailable, falling back to CPU',
        );
      }
    }
    const s = await ort.InferenceSession.create(o.path, { ...base, executionProviders: ['cpu'] });
    return new OnnxModel(s, o.path, 'cpu', key);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Throws a message naming the model and the missing inputs (with the dims of what was given) instead of ORT's terse one. */
  checkInputs(feeds: Record<string, ort.Tensor>): void {
    const missing = this.session.inputNames.filter((n) => !(n in feeds));
    if (missing.length) {
      const given = Object.entries(feeds).map(([k, t]) => `${k}:${t.type}[${t.dims.join(',')}]`).join(' ');
      throw new Error(`${this.path}: missing inputs ${missing.join(', ')} (given ${given || 'nothing'})`);
    }
  }

  async run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<ort.InferenceSession.ReturnType> {
    this.checkInputs(feeds);
    const only: Record<string, ort.Tensor> = {};
    for (const n of this.session.inputNames) only[n] = feeds[n];
    return fetches ? this.session.run(only, fetches) : this.session.run(only);
  }

  async dispose(): Promise<void> {
    if (--this.refs > 0) return;
    OnnxModel.cache.delete(this.key);
    await this.session.release();
  }
}

export { ort };
