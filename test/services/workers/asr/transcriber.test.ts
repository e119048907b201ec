/** @jest-environment ./test/support/onnx-node-environment.js */
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { decodeForAsr } from '../../../../services/workers/audio/pcm';
import { SileroVad } from '../../../../services/inference/vad';
import { WhisperModel } from '../../../../services/workers/asr/whisper';
import { Transcriber, mergeChunks } from '../../../../services/workers/asr/transcriber';
import { LogMel, melFilterBank } from '../../../../services/workers/asr/log-mel';
import { MixedRadixFft } from '../../../../services/workers/asr/fft';
import {
  TINY_WHISPER_TRANSCRIPT,
  TINY_WHISPER_TRANSLATION,
  TINY_WHISPER_IDS,
  writeTinyWhisper,
} from '../../../../tools/tiny-models/whisper';

jest.setTimeout(120_000);
const fixture = readFileSync(join(__dirname, '../../../fixtures/speech-16k.wav'));

describe('Whisper ASR on the tiny optimum-layout model', () => {
  let dir: string;
  let whisper: WhisperModel;
  let vad: SileroVad;
  let asr: Transcriber;
  beforeAll(async () => {
    dir = writeTinyWhisper(mkdtempSync(join(tmpdir(), 'tiny-whisper-')));
    whisper = await WhisperModel.load({ dir });
    vad = await SileroVad.load();
    asr = new Transcriber(whisper, vad);
  });
  afterAll(async () => {
    await whisper?.dispose();
    await vad?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('transcribes the spoken sentence to the known transcript, segment times from timestamp tokens inside the VAD window', async () => {
    const t = await asr.transcribe(fixture, { language: 'en' });
    expect(t.text).toBe(TINY_WHISPER_TRANSCRIPT);
    expect(t.language).toBe('en');
    expect(t.duration).toBeCloseTo(71015 / 16000, 2);
    expect(t.segments).toHaveLength(1);
    // The window starts where the VAD found speech (~0.5 s in); the model says <|0.00|> … <|1.00|> within it.
    expect(t.segments[0].start).toBeGreaterThan(0.3);
    expect(t.segments[0].start).toBeLessThan(0.8);
    expect(t.segments[0].end - t.segments[0].start).toBeCloseTo(1.0, 3);
    const words = t.segments.flatMap((s) => s.words);
    expect(words.map((w) => w.word)).toEqual(TINY_WHISPER_TRANSCRIPT.split(' '));
    for (let i = 1; i < words.length; i++) expect(words[i].start).toBeGreaterThanOrEqual(words[i - 1].end - 1e-6);
  });

  it('without timestamp tokens, the VAD window is the segment', async () => {
    const t = await asr.transcribe(fixture, { language: 'en', timestamps: false });
    expect(t.text).toBe(TINY_WHISPER_TRANSCRIPT);
    expect(t.segments).toHaveLength(1);
    expect(t.segments[0].end).toBeGreaterThan(3);
  });

  it('decodes timestamp tokens into pairs around the text', async () => {
    const enc = await whisper.encode([decodeForAsr(fixture).samples]);
    const [withTs] = await whisper.decode(enc, { language: 'en' });
    expect(withTs.segments).toEqual([{ start: 0, end: 1, text: TINY_WHISPER_TRANSCRIPT, tokens: withTs.tokens }]);
    const [noTs] = await whisper.decode(enc, { language: 'en', timestamps: false });
    expect(noTs.segments).toEqual([]);
    expect(noTs.text).toBe(TINY_WHISPER_TRANSCRIPT);
  });

  it('detects the language from the first window when none is given', async () => {
    const t = await asr.transcribe(fixture);
    expect(t.language).toBe('en');
    expect(t.text).toBe(TINY_WHISPER_TRANSCRIPT);
  });

  it('returns no segments for silence, without running the decoder', async () => {
    const t = await asr.transcribePcm(new Float32Array(32000), { language: 'en' });
    expect(t).toEqual({ text: '', language: 'en', duration: 2, segments: [] });
  });

  it('decodes a batch of 8 windows in one encoder run, one transcript per row', async () => {
    const speech = decodeForAsr(fixture).samples;
    const enc = await whisper.encode(Array.from({ length: 8 }, () => speech));
    expect(enc.dims).toEqual([8, 1500, 4]);
    const out = await whisper.decode(enc, { language: 'en' });
    expect(out.map((o) => o.text)).toEqual(new Array(8).fill(TINY_WHISPER_TRANSCRIPT));
  });

  it('packs the windows of several inputs into one encoder run and decodes each with its own options', async () => {
    const speech = decodeForAsr(fixture).samples;
    const encode = jest.spyOn(whisper, 'encode');
    try {
      const [a, silent, b] = await asr.transcribeMany(
        [
          { samples: speech },
          { samples: new Float32Array(32000), opts: { language: 'de' } },
          { samples: speech, opts: { language: 'en', timestamps: false } },
        ],
        8,
      );
      expect(encode).toHaveBeenCalledTimes(1);
      expect(encode.mock.calls[0][0]).toHaveLength(2);
      expect(a).toMatchObject({ text: TINY_WHISPER_TRANSCRIPT, language: 'en' });
      expect(a.segments[0].end - a.segments[0].start).toBeCloseTo(1, 3);
      expect(silent).toMatchObject({ text: '', language: 'de', segments: [] });
      expect(b.text).toBe(TINY_WHISPER_TRANSCRIPT);
      expect(b.segments[0].end).toBeGreaterThan(3);
    } finally {
      encode.mockRestore();
    }
  });

  it('puts the task token into the decoder prompt: translate and transcribe decode differently from the same audio', async () => {
    const enc = await whisper.encode([decodeForAsr(fixture).samples]);
    const spy = jest.spyOn(whisper as unknown as { step(ids: bigint[][]): unknown }, 'step');
    const [translated] = await whisper.decode(enc, { language: 'en', task: 'translate' });
    const prompt = (spy.mock.calls[0][0] as bigint[][])[0].map(Number);
    spy.mockRestore();
    expect(prompt).toEqual([TINY_WHISPER_IDS['<|startoftranscript|>'], TINY_WHISPER_IDS['<|en|>'], TINY_WHISPER_IDS['<|translate|>']]);
    expect(translated.text).toBe(TINY_WHISPER_TRANSLATION);
    const [transcribed] = await whisper.decode(enc, { language: 'en', task: 'transcribe' });
    expect(transcribed.text).toBe(TINY_WHISPER_TRANSCRIPT);
  });

  it("streams: a streaming input reports each window's segments before the next window is decoded", async () => {
    const pcm = decodeForAsr(fixture).samples;
    // Speech, 27 s of silence, speech: two VAD segments more than 30 s apart, so two Whisper windows.
    const long = new Float32Array(pcm.length * 2 + 27 * 16000);
    long.set(pcm, 0);
    long.set(pcm, pcm.length + 27 * 16000);
    const order: string[] = [];
    const decode = whisper.decode.bind(whisper);
    const spy = jest.spyOn(whisper, 'decode').mockImplementation(async (enc, req) => {
      order.push(`decode rows=${enc.dims[0]}`);
      return decode(enc, req);
    });
    try {
      const [t] = await asr.transcribeMany([
        {
          samples: long,
          opts: { language: 'en', stream: true },
          onSegments: (segs) => {
            order.push(`segments ${segs.map((x) => x.text).join('|')}`);
          },
        },
      ]);
      expect(order).toEqual([
        `decode rows=1`,
        `segments ${TINY_WHISPER_TRANSCRIPT}`,
        `decode rows=1`,
        `segments ${TINY_WHISPER_TRANSCRIPT}`,
      ]);
      expect(t.text).toBe(`${TINY_WHISPER_TRANSCRIPT} ${TINY_WHISPER_TRANSCRIPT}`);
      order.length = 0;
      // Without `stream` both windows decode together: one decode of two rows.
      await asr.transcribeMany([{ samples: long, opts: { language: 'en' } }]);
      expect(order).toEqual([`decode rows=2`]);
    } finally {
      spy.mockRestore();
    }
  });

  it('rejects a language the vocabulary lacks', async () => {
    const enc = await whisper.encode([new Float32Array(16000)]);
    await expect(whisper.decode(enc, { language: 'xx' })).rejects.toThrow("'xx'");
  });
});

describe('log-mel and chunking', () => {
  it('builds a Slaney mel bank whose triangles peak in order and cover the spectrum', () => {
    const bank = melFilterBank(16000, 400, 80);
    expect(bank).toHaveLength(80);
    const peaks = bank.map((row) => row.indexOf(Math.max(...row)));
    for (let i = 1; i < peaks.length; i++) expect(peaks[i]).toBeGreaterThanOrEqual(peaks[i - 1]);
    expect(bank.every((row) => row.some((v) => v > 0))).toBe(true);
  });

  it('puts a 1 kHz tone in the mel bins around 1 kHz and floors silence at max-8', () => {
    const tone = Float32Array.from({ length: 16000 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000));
    const mel = new LogMel();
    const f = mel.compute(tone);
    const frame = 50;
    const col = Array.from({ length: 80 }, (_, m) => f[m * 3000 + frame]);
    const peak = col.indexOf(Math.max(...col));
    // 1000 Hz is mel 15 on the Slaney scale; 80 bins span 0..~45.25 mel, so bin ≈ 15/45.25*81 - 1 ≈ 26.
    expect(peak).toBeGreaterThanOrEqual(24);
    expect(peak).toBeLessThanOrEqual(28);
    const max = f.reduce((a, b) => Math.max(a, b), -Infinity);
    expect(f.reduce((a, b) => Math.min(a, b), Infinity)).toBeCloseTo(max - 2, 5); // (x - 8 + 4) / 4 vs (x + 4) / 4
    expect(f[0 * 3000 + 2999]).toBeCloseTo(max - 2, 5);
  });

  it('merges VAD segments into windows of at most 30 s', () => {
    const s = (a: number, b: number) => ({ start: a * 16000, end: b * 16000 });
    expect(mergeChunks([s(0, 10), s(12, 25), s(26, 40), s(41, 42)])).toEqual([s(0, 25), s(26, 42)]);
  });
});

describe('mixed-radix FFT', () => {
  it.each([400, 512, 30, 7 * 11])('matches the direct DFT for n = %i', (n) => {
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + 0.5 * Math.cos(i * 1.3) + (i % 7) / 10);
    const fft = new MixedRadixFft(n);
    fft.realForward(x);
    for (let k = 0; k <= n / 2; k++) {
      let re = 0;
      let im = 0;
      for (let t = 0; t < n; t++) {
        re += x[t] * Math.cos((2 * Math.PI * k * t) / n);
        im -= x[t] * Math.sin((2 * Math.PI * k * t) / n);
      }
      expect(fft.re[k]).toBeCloseTo(re, 8);
      expect(fft.im[k]).toBeCloseTo(im, 8);
    }
  });
});
