/**
 * Browser audio: microphone -> 16 kHz PCM16 frames (the gateway's format), and streamed reply
 * audio played chunk by chunk as it arrives. The browser resamples: an AudioContext created at
 * 16 kHz converts the microphone's native rate for us.
 */

export const ORB_RATE = 16_000;
/** 20 ms at 16 kHz. */
export const FRAME_SAMPLES = 320;

export interface Microphone {
  stop(): Promise<void>;
}

/** Starts capture; `onFrame` gets each 20 ms PCM16LE frame and its RMS (0..1). */
export async function startMicrophone(onFrame: (pcm: ArrayBuffer, rms: number) => void): Promise<Microphone> {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const ctx = new AudioContext({ sampleRate: ORB_RATE });
  // Built next to app.js (web/build.ts); same origin, as the gateway's CSP requires.
  await ctx.audioWorklet.addModule(new URL('capture-worklet.js', document.baseURI).toString());
  const src = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'orb-capture', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1 });
  node.port.onmessage = (ev: MessageEvent<{ pcm: ArrayBuffer; rms: number }>) => onFrame(ev.data.pcm, ev.data.rms);
  src.connect(node);
  if (ctx.state === 'suspended') await ctx.resume();
  return {
    async stop() {
      src.disconnect();
      node.disconnect();
      for (const t of stream.getTracks()) t.stop();
      await ctx.close();
    },
  };
}

/** Plays PCM16 chunks back to back as they stream in; `stop()` cuts playback (barge-in). */
export class StreamingPlayer {
  private ctx: AudioContext | undefined;
  private nextAt = 0;
  private readonly sources = new Set<AudioBufferSourceNode>();
  chunksPlayed = 0;
  onIdle: (() => void) | undefined;

  get playing(): boolean {
    return this.sources.size > 0;
  }

  async enqueue(pcm16: Uint8Array, sampleRate: number): Promise<void> {
    this.ctx ??= new AudioContext();
    if (this.ctx.state === 'suspended') await this.ctx.resume();
    const n = Math.floor(pcm16.byteLength / 2);
    if (!n) return;
    const view = new DataView(pcm16.buffer, pcm16.byteOffset, n * 2);
    const buf = this.ctx.createBuffer(1, n, sampleRate);
    const ch = buf.getChannelData(0);
    for (let i = 0; i < n; i++) ch[i] = view.getInt16(i * 2, true) / 0x8000;
    const src = this.ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this.ctx.destination);
    // Chunks are scheduled end to end; a late chunk starts now rather than in the past.
    const at = Math.max(this.ctx.currentTime + 0.02, this.nextAt);
    src.start(at);
    this.nextAt = at + buf.duration;
    this.sources.add(src);
    this.chunksPlayed++;
    src.onended = () => {
      this.sources.delete(src);
      if (!this.sources.size) this.onIdle?.();
    };
  }

  stop(): void {
    for (const s of this.sources) {
      try {
        s.stop();
      } catch {
        /* already ended */
      }
    }
    this.sources.clear();
    this.nextAt = 0;
  }
}

/** base64 -> bytes without a Buffer polyfill. */
export function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
