/**
 * Audio-thread half of the microphone capture: float samples -> Int16 frames of 20 ms at the
 * context's 16 kHz, each with its RMS (barge-in / endpointing). A same-origin file, not a blob
 * URL, so the gateway's Content-Security-Policy (script-src 'self') allows it.
 */
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, ctor: unknown): void;

const FRAME_SAMPLES = 320;

class OrbCapture extends AudioWorkletProcessor {
  private buf = new Int16Array(FRAME_SAMPLES);
  private n = 0;
  private sq = 0;

  process(inputs: Float32Array[][]): boolean {
    const ch = inputs[0]?.[0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      const s = Math.max(-1, Math.min(1, ch[i]));
      this.sq += s * s;
      this.buf[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.n === this.buf.length) {
        const rms = Math.sqrt(this.sq / this.n);
        this.port.postMessage({ pcm: this.buf.buffer, rms }, [this.buf.buffer]);
        this.buf = new Int16Array(FRAME_SAMPLES);
        this.n = 0;
        this.sq = 0;
      }
    }
    return true;
  }
}

registerProcessor('orb-capture', OrbCapture);
