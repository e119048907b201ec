/**
 * VAD endpointing of one audio stream: Silero VAD (services/inference/vad.ts, the
 * gateway's only model) over 512-sample windows. Silence before speech is not stored (only a
 * short pre-roll is kept in memory); from speech start, audio goes to the vault as it arrives;
 * speech end closes the utterance (end of turn). speech start while a reply plays is barge-in.
 *
 * This runs for every 20 ms frame of every stream, so it copies each byte once: frames fill one
 * fixed window buffer, a full window is converted to float in place, and the pre-roll is a fixed
 * ring of whole windows. Nothing is allocated per frame unless there is something to hand on
 * (the pre-roll at speech start, a window of speech).
 */
import type { VadStream } from '../inference/vad';
import { VAD_WINDOW } from '../inference/vad';
import { endianness } from 'node:os';

export type EndpointAction = { type: 'speech_start' } | { type: 'audio'; pcm: Buffer } | { type: 'speech_end' };

const WINDOW_BYTES = VAD_WINDOW * 2;
const LITTLE_ENDIAN = endianness() === 'LE';

export class Endpointer {
  /** The window being filled; its own ArrayBuffer at offset 0, so an Int16Array can view it. */
  private readonly pending = Buffer.alloc(WINDOW_BYTES);
  private readonly samples = new Int16Array(this.pending.buffer, this.pending.byteOffset, VAD_WINDOW);
  private fill = 0;
  /** Most recent windows before speech, oldest at `ringStart`; made at the first window kept. */
  private ring: Buffer | null = null;
  private ringStart = 0;
  private ringCount = 0;
  private readonly ringWindows: number;
  private speaking = false;
  private readonly window = new Float32Array(VAD_WINDOW);

  constructor(
    private readonly vad: VadStream,
    preRollBytes: number,
  ) {
    // As many whole windows as it takes to hold at least preRollBytes (at least one).
    this.ringWindows = Math.max(1, Math.ceil(preRollBytes / WINDOW_BYTES));
  }

  get inSpeech(): boolean {
    return this.speaking;
  }

  /** Feeds PCM16LE bytes; returns what to do, in order. Bytes short of a window wait for the next call. */
  async push(pcm: Buffer): Promise<EndpointAction[]> {
    const out: EndpointAction[] = [];
    let off = 0;
    while (off < pcm.length) {
      const n = Math.min(WINDOW_BYTES - this.fill, pcm.length - off);
      pcm.copy(this.pending, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill < WINDOW_BYTES) break;
      this.fill = 0;
      await this.onWindow(out);
    }
    return out;
  }

  private async onWindow(out: EndpointAction[]): Promise<void> {
    const win = this.window;
    if (LITTLE_ENDIAN) {
      const s = this.samples;
      for (let i = 0; i < VAD_WINDOW; i++) win[i] = s[i] / 32768;
    } else {
      for (let i = 0; i < VAD_WINDOW; i++) win[i] = this.pending.readInt16LE(i * 2) / 32768;
    }
    const events = await this.vad.pushWindow(win);
    if (!this.speaking) {
      this.keep();
      if (events.some((e) => e.type === 'speech_start')) {
        this.speaking = true;
        out.push({ type: 'speech_start' }, { type: 'audio', pcm: this.takePreRoll() });
      }
      return;
    }
    out.push({ type: 'audio', pcm: Buffer.from(this.pending) });
    if (events.some((e) => e.type === 'speech_end')) {
      this.speaking = false;
      out.push({ type: 'speech_end' });
    }
  }

  /** Keeps the current window in the pre-roll ring, over the oldest when it is full. */
  private keep(): void {
    const ring = (this.ring ??= Buffer.allocUnsafe(this.ringWindows * WINDOW_BYTES));
    const slot = (this.ringStart + this.ringCount) % this.ringWindows;
    this.pending.copy(ring, slot * WINDOW_BYTES);
    if (this.ringCount < this.ringWindows) this.ringCount++;
    else this.ringStart = (this.ringStart + 1) % this.ringWindows;
  }

  /** The pre-roll, oldest first, as one new buffer; the ring is empty after. */
  private takePreRoll(): Buffer {
    const out = Buffer.allocUnsafe(this.ringCount * WINDOW_BYTES);
    for (let i = 0; i < this.ringCount; i++) {
      const slot = (this.ringStart + i) % this.ringWindows;
      this.ring!.copy(out, i * WINDOW_BYTES, slot * WINDOW_BYTES, (slot + 1) * WINDOW_BYTES);
    }
    this.ringStart = 0;
    this.ringCount = 0;
    return out;
  }
}
