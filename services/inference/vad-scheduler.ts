/**
 * One Silero VAD run for the windows of many streams. Silero v5 takes a batch dimension
 * (`input` [B, 576], `state` [2, B, 128], `output` [B, 1]) and each row keeps its own recurrent
 * state, so one run of B windows gives the same probabilities as B single runs at a fraction of
 * the cost (the per-run overhead of onnxruntime dominates a 512-sample window).
 *
 * Windows queue until the next tick; then up to `maxBatch` of them run together. While a run is
 * in flight (onnxruntime-node runs off the main thread), new windows queue for the next one, so
 * the batch grows with the load by itself. A tick with one window runs it alone.
 */
import { ort, type OnnxModel } from './model';

/** Samples per row: 64 of context from the previous window, then the 512-sample window. */
export const VAD_ROW = 64 + 512;
/** Floats per stream in Silero v5's state ([2, 1, 128]). */
export const VAD_STATE_ROW = 128;

export interface VadBatchOptions {
  /** Most windows in one onnxruntime run; more wait for the next tick. @default 64 */
  readonly maxBatch?: number;
  /** Longest a window waits for others before its tick runs, in ms; 0: the next turn of the event loop. @default 0 */
  readonly tickMs?: number;
}

/** What the scheduler has done, for the bench and the tests. */
export interface VadBatchStats {
  /** onnxruntime runs made. */
  runs: number;
  /** Windows those runs held. */
  windows: number;
  /** Runs of a single window (the fall-back path). */
  singleRuns: number;
  /** The largest batch so far. */
  largestBatch: number;
}

interface PendingWindow {
  /** The stream's [context + window] buffer; read at the tick, not copied before. */
  readonly input: Float32Array;
  /** The stream's state ([2, 1, 128] flattened): read at the tick, overwritten with the new one. */
  readonly state: Float32Array;
  readonly resolve: (p: number) => void;
  readonly reject: (err: Error) => void;
}

const DEFAULTS = { maxBatch: 64, tickMs: 0 };

export class VadScheduler {
  readonly maxBatch: number;
  readonly tickMs: number;
  readonly stats: VadBatchStats = { runs: 0, windows: 0, singleRuns: 0, largestBatch: 0 };
  private queue: PendingWindow[] = [];
  private tick: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private running = false;
  private closed = false;
  // Batch buffers sized for maxBatch once; each run views the first B rows.
  private readonly inputBuf: Float32Array;
  private readonly stateBuf: Float32Array;
  private readonly srTensor = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);

  constructor(
    private readonly model: OnnxModel,
    opts: VadBatchOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? DEFAULTS.maxBatch;
    this.tickMs = opts.tickMs ?? DEFAULTS.tickMs;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new Error(`'maxBatch' (${this.maxBatch}) must be a positive integer`);
    if (!(this.tickMs >= 0)) throw new Error(`'tickMs' (${this.tickMs}) must be at least 0`);
    this.inputBuf = new Float32Array(this.maxBatch * VAD_ROW);
    this.stateBuf = new Float32Array(2 * this.maxBatch * VAD_STATE_ROW);
  }

  /**
   * Queues one stream's window for the next tick; resolves with its speech probability once the
   * new state is in `state`. A stream must not queue its next window before this resolves.
   */
  probability(input: Float32Array, state: Float32Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error('VAD scheduler is closed'));
    if (input.length !== VAD_ROW || state.length !== 2 * VAD_STATE_ROW) {
      return Promise.reject(
        new Error(
          `VAD row must be float32[${VAD_ROW}] with state float32[${2 * VAD_STATE_ROW}], got [${input.length}] and [${state.length}]`,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ input, state, resolve, reject });
      this.schedule();
    });
  }

  /** Rejects what is queued; later windows are refused. */
  close(): void {
    this.closed = true;
    if (this.tick) this.clearTick();
    const left = this.queue;
    this.queue = [];
    for (const w of left) w.reject(new Error('VAD scheduler is closed'));
  }

  private schedule(): void {
    if (this.tick || this.running || !this.queue.length) return;
    const fire = () => {
      this.tick = null;
      void this.runTick();
    };
    // Not unref'd: a caller awaits this tick, and an unref'd immediate waits for other I/O to wake the loop.
    this.tick = this.tickMs > 0 ? setTimeout(fire, this.tickMs) : setImmediate(fire);
  }

  private clearTick(): void {
    if (this.tickMs > 0) clearTimeout(this.tick as NodeJS.Timeout);
    else clearImmediate(this.tick as NodeJS.Immediate);
    this.tick = null;
  }

  private async runTick(): Promise<void> {
    const batch = this.queue.splice(0, this.maxBatch);
    if (!batch.length) return;
    this.running = true;
    try {
      if (batch.length === 1) await this.runOne(batch[0]);
      else await this.runBatch(batch);
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  /** The fall-back: one window, the stream's own buffers, the same feeds as a per-stream run. */
  private async runOne(w: PendingWindow): Promise<void> {
    const out = await this.model.run({
      input: new ort.Tensor('float32', w.input, [1, VAD_ROW]),
      state: new ort.Tensor('float32', w.state, [2, 1, VAD_STATE_ROW]),
      sr: this.srTensor,
    });
    this.count(1);
    w.state.set(out.stateN.data as Float32Array);
    w.resolve((out.output.data as Float32Array)[0]);
  }

  private async runBatch(batch: PendingWindow[]): Promise<void> {
    const b = batch.length;
    const input = this.inputBuf.subarray(0, b * VAD_ROW);
    const state = this.stateBuf.subarray(0, 2 * b * VAD_STATE_ROW);
    // State is [2, B, 128]: each stream's two 128-float halves go to row r of each half.
    const half = b * VAD_STATE_ROW;
    for (const [r, w] of batch.entries()) {
      input.set(w.input, r * VAD_ROW);
      state.set(w.state.subarray(0, VAD_STATE_ROW), r * VAD_STATE_ROW);
      state.set(w.state.subarray(VAD_STATE_ROW), half + r * VAD_STATE_ROW);
    }
    const out = await this.model.run({
      input: new ort.Tensor('float32', input, [b, VAD_ROW]),
      state: new ort.Tensor('float32', state, [2, b, VAD_STATE_ROW]),
      sr: this.srTensor,
    });
    this.count(b);
    const p = out.output.data as Float32Array;
    const next = out.stateN.data as Float32Array;
    for (const [r, w] of batch.entries()) {
      w.state.set(next.subarray(r * VAD_STATE_ROW, (r + 1) * VAD_STATE_ROW), 0);
      w.state.set(next.subarray(half + r * VAD_STATE_ROW, half + (r + 1) * VAD_STATE_ROW), VAD_STATE_ROW);
      w.resolve(p[r]);
    }
  }

  private count(b: number): void {
    this.stats.runs++;
    this.stats.windows += b;
    if (b === 1) this.stats.singleRuns++;
    if (b > this.stats.largestBatch) this.stats.largestBatch = b;
  }
}
