import { readFileSync } from 'fs';
import { join } from 'path';
import { WaveFile } from 'wavefile';
import { decodeAudio, decodeForAsr, encodePcm16, encodeWav, resample } from '../../../../services/workers/audio/pcm';

const fixture = readFileSync(join(__dirname, '../../../fixtures/speech-16k.wav'));

function wavOf(channels: number, rate: number, depth: string, samples: ArrayLike<number> | ArrayLike<number>[]): Buffer {
  const w = new WaveFile();
  w.fromScratch(channels, rate, depth, samples as never);
  return Buffer.from(w.toBuffer());
}

function expectCode(fn: () => unknown, code: string, status: number): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(Error);
  expect(caught).toMatchObject({ code, statusCode: status });
}

describe('decodeAudio', () => {
  it('reads the PCM16 16 kHz fixture as mono float', () => {
    const pcm = decodeAudio(fixture);
    expect(pcm.sampleRate).toBe(16000);
    expect(pcm.samples.length).toBe((fixture.length - 44) / 2);
    const peak = pcm.samples.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(0.05);
    expect(peak).toBeLessThanOrEqual(1);
  });

  it('downmixes stereo 44.1 kHz and resamples it to 16 kHz mono', () => {
    const n = 44100;
    const left = Array.from({ length: n }, (_, i) => Math.round(10000 * Math.sin((2 * Math.PI * 440 * i) / 44100)));
    const right = left.map((v) => -v / 2);
    const pcm = decodeForAsr(wavOf(2, 44100, '16', [left, right]));
    expect(pcm.sampleRate).toBe(16000);
    expect(Math.abs(pcm.samples.length - 16000)).toBeLessThanOrEqual(1);
    // (L + R) / 2 = L / 4: peak about 10000 / 32768 / 4.
    const peak = pcm.samples.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(0.06);
    expect(peak).toBeLessThan(0.09);
  });

  it.each([
    ['8-bit', '8', [128, 255, 0]],
    ['24-bit', '24', [0, 4194304, -4194304]],
    ['32-bit float', '32f', [0, 0.5, -0.5]],
    ['64-bit float', '64', [0, 0.5, -0.5]],
  ])('reads %s WAV', (_name, depth, samples) => {
    const pcm = decodeAudio(wavOf(1, 22050, depth, samples));
    expect(pcm.sampleRate).toBe(22050);
    expect(pcm.samples.length).toBe(3);
    expect(Math.abs(pcm.samples[1])).toBeGreaterThan(0.45);
  });

  it('reads raw PCM16LE at the given rate', () => {
    const raw = Buffer.alloc(8);
    raw.writeInt16LE(16384, 2);
    raw.writeInt16LE(-32768, 6);
    const pcm = decodeAudio(raw, { format: 'pcm16', pcmSampleRate: 8000 });
    expect(pcm.sampleRate).toBe(8000);
    expect(Array.from(pcm.samples)).toEqual([0, 0.5, 0, -1]);
  });

  it('round-trips through encodeWav and encodePcm16', () => {
    const pcm = decodeAudio(fixture);
    const again = decodeAudio(encodeWav(pcm));
    expect(again.samples.length).toBe(pcm.samples.length);
    expect(encodePcm16(pcm.samples).equals(fixture.subarray(44))).toBe(true);
  });

  it('reads a streamed WAV whose data size is the 0xFFFFFFFF placeholder up to the end of the file', () => {
    const buf = Buffer.concat([Buffer.from(fixture), Buffer.alloc(1)]); // plus a stray byte: not a whole frame
    buf.writeUInt32LE(0xffffffff, 4);
    buf.writeUInt32LE(0xffffffff, 40);
    expect(decodeAudio(buf).samples.length).toBe((fixture.length - 44) / 2);
  });

  it('keeps 16 kHz input untouched', () => {
    const pcm = decodeAudio(fixture);
    expect(resample(pcm)).toBe(pcm);
  });
});

describe('bad audio gets a stable code, never a crash', () => {
  it('zero bytes', () => expectCode(() => decodeAudio(Buffer.alloc(0)), 'ORB_ERR_AUDIO_EMPTY', 400));
  it('a WAV with an empty data chunk', () => expectCode(() => decodeAudio(wavOf(1, 16000, '16', [])), 'ORB_ERR_AUDIO_EMPTY', 400));
  it('a truncated header', () => expectCode(() => decodeAudio(fixture.subarray(0, 30)), 'ORB_ERR_AUDIO_TRUNCATED', 400));
  it('a data chunk cut short', () => expectCode(() => decodeAudio(fixture.subarray(0, 1000)), 'ORB_ERR_AUDIO_TRUNCATED', 400));
  it('odd-length raw PCM16', () => expectCode(() => decodeAudio(Buffer.alloc(3), { format: 'pcm16' }), 'ORB_ERR_AUDIO_TRUNCATED', 400));
  it('not a WAV at all (e.g. MP3 bytes)', () =>
    expectCode(() => decodeAudio(Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00' + 'x'.repeat(100), 'latin1')), 'ORB_ERR_AUDIO_FORMAT', 415));
  it('an unsupported WAV codec (mu-law)', () => {
    const buf = Buffer.from(wavOf(1, 8000, '16', [1, 2, 3, 4]));
    buf.writeUInt16LE(7, 20); // audioFormat 7 = mu-law
    buf.writeUInt16LE(8, 34);
    expectCode(() => decodeAudio(buf), 'ORB_ERR_AUDIO_FORMAT', 415);
  });
  it('an absurd sample rate', () => {
    const buf = Buffer.from(wavOf(1, 16000, '16', [1, 2]));
    buf.writeUInt32LE(1, 24);
    expectCode(() => decodeAudio(buf), 'ORB_ERR_AUDIO_FORMAT', 415);
  });
  it('an absurd declared duration', () => {
    const buf = Buffer.from(fixture);
    buf.writeUInt32LE(0x40000000, 40); // data chunk size: 1 GiB, ~9.3 hours at 16 kHz
    expectCode(() => decodeAudio(buf), 'ORB_ERR_AUDIO_TOO_LONG', 413);
  });
  it('raw PCM past the duration limit', () =>
    expectCode(() => decodeAudio(Buffer.alloc(16000 * 2 * 3), { format: 'pcm16', maxDurationS: 2 }), 'ORB_ERR_AUDIO_TOO_LONG', 413));
  it('NaN float samples', () => expectCode(() => decodeAudio(wavOf(1, 16000, '32f', [0, NaN, 0.1])), 'ORB_ERR_AUDIO_SAMPLES', 400));
  it('infinite float samples in a stereo file', () =>
    expectCode(
      () =>
        decodeAudio(
          wavOf(2, 16000, '32f', [
            [0, 0.1],
            [Infinity, 0],
          ]),
        ),
      'ORB_ERR_AUDIO_SAMPLES',
      400,
    ));
});
