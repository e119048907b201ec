import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

/**
 * The configured execution provider could not be loaded. Workers do not serve on another provider
 * than the one asked for: a GPU pod on CPU holds a GPU and misses every latency target silently.
 */
export class ExecutionProviderError extends Error {
  constructor(
    readonly requested: ExecutionProvider,
    readonly model: string,
    readonly cause: string,
  ) {
    super(
      `${requested.toUpperCase()} execution provider could not be loaded for ${model}: ${cause} ` +
        `(EXECUTION_PROVIDER=${requested}; no CPU fallback: set EXECUTION_PROVIDER=cpu where CPU is meant, or install the ${requested} binaries)`,
    );
    this.name = 'ExecutionProviderError';
  }
}

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
  /** Receives load messages. @default - console */
  logger?: ModelLogger;
}

const DEFAULTS = { executionProvider: 'cpu' as ExecutionProvider, intraOpThreads: 1, interOpThreads: 1 };

/**
 * One onnxruntime InferenceSession per model file per process, shared by every stream/job that uses it
 * (ORT sessions are safe to run concurrently) and released when the last holder disposes it.
 */
export class OnnxModel {
  private static readonly cache = new Map<string, Promise<OnnxModel>>();
  private static readonly live = new Set<OnnxModel>();
  private refs = 1;

  private constructor(
    readonly session: ort.InferenceSession,
    readonly path: string,
    /** The provider the session runs on (always the one requested: there is no fallback). */
    readonly provider: ExecutionProvider,
    private readonly key: string,
  ) {
    OnnxModel.live.add(this);
  }

  /** Providers of the sessions alive in this process (the worker's `execution_provider` metric label). */
  static providersInUse(): ExecutionProvider[] {
    return [...new Set([...OnnxModel.live].map((m) => m.provider))].sort();
  }

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
      let s: ort.InferenceSession;
      try {
        // Only 'cuda': listing 'cpu' after it would let onnxruntime place every node on CPU without a word.
        s = await ort.InferenceSession.create(o.path, { ...base, executionProviders: ['cuda'] });
      } catch (err) {
        throw new ExecutionProviderError('cuda', o.path, (err as Error).message.split('\n')[0]);
      }
      o.logger?.info?.({ model: o.path, provider: 'cuda' }, 'model loaded on the CUDA execution provider');
      return new OnnxModel(s, o.path, 'cuda', key);
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
      const given = Object.entries(feeds)
        .map(([k, t]) => `${k}:${t.type}[${t.dims.join(',')}]`)
        .join(' ');
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
    OnnxModel.live.delete(this);
    await this.session.release();
  }
}

export { ort };
