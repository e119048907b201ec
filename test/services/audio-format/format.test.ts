/**
 * The shared audio/caption writers (services/audio-format). WAV bytes are checked against
 * wavefile's own writer, which the CLI and the workers used before they shared this module, so
 * the move kept every byte; captions against hand-written SRT/WebVTT.
 */
import { WaveFile } from 'wavefile';
import { encodePcm16, encodeWav, floatToInt16, pcm16ToWav, resamplePcm16, toSrt, toVtt, wavHeader } from '../../../services/audio-format';
import { decodeAudio } from '../../../services/workers/audio/pcm';

function wavefileWav(samples: Int16Array, rate: number): Buffer {
  const w = new WaveFile();
  w.fromScratch(1, rate, '16', samples);
  return Buffer.from(w.toBuffer());
}

describe('WAV', () => {
  it.each([
    [0, 16000],
    [1, 22050],
    [1001, 24000],
    [4800, 48000],
  ])('pcm16ToWav of %i samples at %i Hz has the bytes wavefile writes', (n, rate) => {
    const ints = new Int16Array(n);
    for (let i = 0; i < n; i++) ints[i] = ((i * 7919) % 65536) - 32768;
    const pcm = Buffer.from(ints.buffer);
    expect(pcm16ToWav(pcm, rate).equals(wavefileWav(ints, rate))).toBe(true);
    expect(wavHeader(pcm.length, rate).equals(wavefileWav(ints, rate).subarray(0, 44))).toBe(true);
  });

  it('drops half a trailing sample and honours a view into a larger buffer', () => {
    const backing = Buffer.from([9, 9, 1, 0, 2, 0, 3, 9, 9]);
    const view = backing.subarray(2, 7); // 1, 2 and half of 3
    const wav = pcm16ToWav(view, 8000);
    expect(wav.length).toBe(44 + 4);
    expect([...wav.subarray(44)]).toEqual([1, 0, 2, 0]);
    expect(wav.readUInt32LE(40)).toBe(4);
  });

  it('encodeWav of float samples equals wavefile with floatToInt16, and decodes back', () => {
    const samples = Float32Array.from([0, 0.5, -0.5, 1, -1, 1.5, -1.5, 0.25]);
    const wav = encodeWav({ samples, sampleRate: 16000 });
    expect(wav.equals(wavefileWav(floatToInt16(samples), 16000))).toBe(true);
    expect(encodePcm16(samples).equals(wav.subarray(44))).toBe(true);
    const back = decodeAudio(wav);
    expect(back.sampleRate).toBe(16000);
    expect(Array.from(back.samples).map((x) => Math.round(x * 100) / 100)).toEqual([0, 0.5, -0.5, 1, -1, 1, -1, 0.25]);
  });

  it('floatToInt16 clips and scales asymmetrically', () => {
    expect(Array.from(floatToInt16(Float32Array.from([-2, -1, 0, 1, 2])))).toEqual([-32768, -32768, 0, 32767, 32767]);
  });

  it('resamplePcm16 keeps the rate as is, and changes the length by the rate ratio', () => {
    const pcm = encodePcm16(Float32Array.from({ length: 220 }, (_, i) => Math.sin(i / 10) / 2));
    expect(resamplePcm16(pcm, 22050, 22050)).toBe(pcm);
    expect(resamplePcm16(pcm, 22050, 24000).length).toBe(2 * Math.round((220 * 24000) / 22050));
  });
});

describe('captions', () => {
  const segments = [
    { start: 0, end: 1.5, text: ' hello ' },
    { start: 3661.5, end: 3662.25, text: 'world' },
  ];

  it('writes SRT', () => {
    expect(toSrt(segments)).toBe('1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n01:01:01,500 --> 01:01:02,250\nworld\n');
  });

  it('writes WebVTT', () => {
    expect(toVtt(segments)).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nhello\n\n01:01:01.500 --> 01:01:02.250\nworld\n');
  });

  it('writes empty captions for no segments', () => {
    expect(toSrt([])).toBe('');
    expect(toVtt([])).toBe('WEBVTT\n\n');
  });
});
