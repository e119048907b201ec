/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * The endpointer copies each byte once into a fixed window and keeps its pre-roll in a ring (it
 * runs for every frame of every stream). Its actions must be exactly those of the plain version
 * it replaced (concatenate, cut whole windows, keep a list of pre-roll windows): this test keeps
 * that version as the oracle and feeds both the same speech, silence and noise, cut into frames
 * of many sizes, through the real Silero VAD.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { SileroVad, VAD_WINDOW, type VadStream } from '../../../services/inference/vad';
import { Endpointer, type EndpointAction } from '../../../services/orb/endpointing';

jest.setTimeout(120_000);

/** The endpointer as it was before (services/orb/endpointing.ts at aa2ce07), the oracle. */
class PlainEndpointer {
  private carry = Buffer.alloc(0);
  private preRoll: Buffer[] = [];
  private preRollLen = 0;
  private speaking = false;
  private readonly window = new Float32Array(VAD_WINDOW);
  constructor(
    private readonly vad: VadStream,
    private readonly preRollBytes: number,
  ) {}
  async push(pcm: Buffer): Promise<EndpointAction[]> {
    const buf = this.carry.length ? Buffer.concat([this.carry, pcm]) : pcm;
    const whole = buf.length - (buf.length % (VAD_WINDOW * 2));
    this.carry = Buffer.from(buf.subarray(whole));
    const out: EndpointAction[] = [];
    for (let off = 0; off < whole; off += VAD_WINDOW * 2) {
      const win = buf.subarray(off, off + VAD_WINDOW * 2);
      for (let i = 0; i < VAD_WINDOW; i++) this.window[i] = win.readInt16LE(i * 2) / 32768;
      const events = await this.vad.pushWindow(this.window);
      if (!this.speaking) {
        this.preRoll.push(Buffer.from(win));
        this.preRollLen += win.length;
        while (this.preRollLen - this.preRoll[0].length >= this.preRollBytes && this.preRoll.length > 1)
          this.preRollLen -= this.preRoll.shift()!.length;
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
}

function fixturePcm(): Buffer {
  const w = new WaveFile(readFileSync(join(__dirname, '../../fixtures/speech-16k.wav')));
  const s = (w.data as { samples: Uint8Array }).samples;
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
}

/** Deterministic noise (xorshift) at a given amplitude, PCM16LE. */
function noise(bytes: number, amp: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes / 2; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt16LE(Math.round(((x >>> 0) / 2 ** 32 - 0.5) * 2 * amp), i * 2);
  }
  return b;
}

/** Actions as comparable values: the type, and the audio's length and bytes. */
function flat(actions: EndpointAction[]): string[] {
  return actions.map((a) => (a.type === 'audio' ? `audio ${a.pcm.length} ${a.pcm.toString('base64')}` : a.type));
}

async function run(
  make: (v: VadStream) => { push(b: Buffer): Promise<EndpointAction[]> },
  vad: SileroVad,
  audio: Buffer,
  frames: number[],
) {
  const e = make(vad.stream({ threshold: 0.5, minSilenceMs: 300 }));
  const out: string[] = [];
  let off = 0;
  for (let i = 0; off < audio.length; i++) {
    const n = frames[i % frames.length];
    out.push(...flat(await e.push(audio.subarray(off, Math.min(audio.length, off + n)))));
    off += n;
  }
  return out;
}

let vad: SileroVad;
beforeAll(async () => {
  vad = await SileroVad.load();
});
afterAll(async () => {
  await vad.dispose();
});

const speech = fixturePcm();
const silence = Buffer.alloc(32_000);
const cases: Array<[string, Buffer]> = [
  ['silence, speech, silence', Buffer.concat([silence, speech, silence])],
  ['speech twice with noise between', Buffer.concat([noise(16_000, 300, 7), speech, noise(24_000, 2000, 11), speech, silence])],
  ['speech from the first byte, no trailing silence', speech],
  ['loud noise only', noise(64_000, 12_000, 3)],
];
// 20 ms frames as microphones send them, odd window-straddling sizes, one sample, and a whole second.
const framings: number[][] = [[640], [1024], [2], [1000, 46, 3002], [32_000], [6, 2048, 638]];

test.each(cases)('%s: the same actions and bytes as the plain endpointer, for every framing', async (_name, audio) => {
  const expected = await run((v) => new PlainEndpointer(v, 9600), vad, audio, [640]);
  for (const frames of framings) {
    expect(await run((v) => new Endpointer(v, 9600), vad, audio, frames)).toEqual(expected);
  }
});

test('speech is found at all (the oracle is not vacuous), and pre-roll sizes that are and are not whole windows agree', async () => {
  const audio = Buffer.concat([silence, speech, silence]);
  for (const preRoll of [0, 1, 1024, 2048, 3000, 9600]) {
    const expected = await run((v) => new PlainEndpointer(v, preRoll), vad, audio, [640]);
    expect(expected).toContain('speech_start');
    expect(expected).toContain('speech_end');
    expect(await run((v) => new Endpointer(v, preRoll), vad, audio, [640, 1280, 2])).toEqual(expected);
  }
});
