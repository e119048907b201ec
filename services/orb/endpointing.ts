/**
 * VAD endpointing of one audio stream: Silero VAD (services/inference/vad.ts, the
 * gateway's only model) over 512-sample windows. Silence before speech is not stored (only a
 * short pre-roll is kept in memory); from speech start, audio goes to the vault as it arrives;
 * speech end closes the utterance (end of turn). speech start while a reply plays is barge-in.
 */
import type { VadStream } from '../inference/vad';
import { VAD_WINDOW } from '../inference/vad';

export type EndpointAction = { type: 'speech_start' } | { type: 'audio'; pcm: Buffer } | { type: 'speech_end' };

const WINDOW_BYTES = VAD_WINDOW * 2;

export class Endpointer {
  private carry = Buffer.alloc(0);
  private preRoll: Buffer[] = [];
  private preRollLen = 0;
  private speaking = false;
  private readonly window = new Float32Array(VAD_WINDOW);

  constructor(
    private readonly vad: VadStream,
    private readonly preRollBytes: number,
  ) {}

  get inSpeech(): boolean {
    return this.speaking;
  }

  /** Feeds PCM16LE bytes; returns what to do, in order. Bytes short of a window wait for the next call. */
  async push(pcm: Buffer): Promise<EndpointAction[]> {
    const buf = this.carry.length ? Buffer.concat([this.carry, pcm]) : pcm;
    const whole = buf.length - (buf.length % WINDOW_BYTES);
    this.carry = Buffer.from(buf.subarray(whole));
    const out: EndpointAction[] = [];
    for (let off = 0; off < whole; off += WINDOW_BYTES) {
      const win = buf.subarray(off, off + WINDOW_BYTES);
      for (let i = 0; i < VAD_WINDOW; i++) this.window[i] = win.readInt16LE(i * 2) / 32768;
      const events = await this.vad.pushWindow(this.window);
      if (!this.speaking) {
        this.keep(win);
        if (events.some((e) => e.type === 'speech_start')) {
          this.speaking = true;
          out.push({ type: 'speech_start' }, { type: 'audio', pcm: Buffer.concat(this.preRoll) });
          this.preRoll = [];
          this.preRollLen = 0;
        }
        continue;
      }
      out.push({ type: 'audio', pcm: Buffer.from(win) });
      if (events.some((e) => e.type === 'speech_end')) {
        this.speaking = false;
        out.push({ type: 'speech_end' });
      }
    }
    return out;
  }

  private keep(win: Buffer): void {
    this.preRoll.push(Buffer.from(win));
    this.preRollLen += win.length;
    while (this.preRollLen - this.preRoll[0].length >= this.preRollBytes && this.preRoll.length > 1) {
      this.preRollLen -= this.preRoll.shift()!.length;
    }
  }
}
