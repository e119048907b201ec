/** @jest-environment ./test/support/onnx-node-environment.js */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { VoiceLibrary, splitSentences, streamSpeech } from '../../../../services/workers/tts/voices';
import { TINY_PIPER_HOP, TINY_PIPER_RATE, writeTinyPiperVoices } from '../../../../tools/tiny-models/piper';

jest.setTimeout(120_000);
describe('Piper/VITS voices on the tiny voice', () => {
  let dir: string;
  let lib: VoiceLibrary;
  beforeAll(() => {
    dir = writeTinyPiperVoices(mkdtempSync(join(tmpdir(), 'tiny-piper-')));
    lib = new VoiceLibrary(dir);
  });
  afterAll(async () => {
    await lib?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists voices in both Piper directory layouts', () => {
    expect(lib.list().map((v) => [v.name, v.sampleRate, v.language])).toEqual([
      ['en_US-tiny-low', TINY_PIPER_RATE, 'en-us'],
      ['tiny-en', TINY_PIPER_RATE, 'en-us'],
    ]);
  });

  it('maps OpenAI voice names to the default voice and refuses other unknown names with a 400 that names them', () => {
    expect(lib.resolve('alloy').name).toBe('en_US-tiny-low');
    expect(lib.resolve(undefined).name).toBe('en_US-tiny-low');
    expect(lib.resolve('tiny-en').name).toBe('tiny-en');
    expect(() => lib.resolve('robot-9')).toThrow(
      expect.objectContaining({ code: 'ORB_ERR_UNKNOWN_VOICE', statusCode: 400, message: expect.stringContaining("'robot-9'") }),
    );
  });

  it('phonemizes with eSpeak NG and produces audio whose length is the phoneme id count times the hop', async () => {
    const voice = await lib.voice('tiny-en');
    const phonemes = await voice.phonemize('Hello world');
    expect(phonemes).toBe('həlˈoʊ wˈɜːld');
    const ids = voice.phonemeIds(phonemes);
    // ^ _ then (phoneme, _) for each of the 13 characters, then $.
    expect(ids.length).toBe(2 + 2 * [...phonemes.normalize('NFD')].length + 1);
    expect(ids[0]).toBe(1);
    expect(ids[ids.length - 1]).toBe(2);
    const audio = await voice.synthesize('Hello world');
    expect(audio.length).toBe(ids.length * TINY_PIPER_HOP);
  });

  it('honours speed through length_scale: speed 2 is half as long, 0.5 twice as long', async () => {
    const voice = await lib.voice('tiny-en');
    const n = (await voice.synthesize('Hello world')).length;
    expect((await voice.synthesize('Hello world', 2)).length).toBe(Math.floor(n / 2));
    expect((await voice.synthesize('Hello world', 0.5)).length).toBe(n * 2);
  });

  it('emits the first chunk before synthesis of the rest of the input begins', async () => {
    const voice = await lib.voice(undefined);
    const order: string[] = [];
    const chunks = [];
    for await (const c of streamSpeech(voice, 'Hello there. How are you today? I am fine!', {
      onSentenceStart: (i) => order.push(`start ${i}`),
    })) {
      order.push(`chunk ${c.index}`);
      chunks.push(c);
    }
    expect(order).toEqual(['start 0', 'chunk 0', 'start 1', 'chunk 1', 'start 2', 'chunk 2']);
    expect(chunks.map((c) => c.last)).toEqual([false, false, true]);
    expect(chunks.every((c) => c.samples.length > 0 && c.sampleRate === TINY_PIPER_RATE)).toBe(true);
  });

  it('splits sentences on terminal punctuation and drops empty ones', () => {
    expect(splitSentences('Hi! How are you?  Fine… "Really." ok')).toEqual(['Hi!', 'How are you?', 'Fine…', '"Really."', 'ok']);
    expect(splitSentences(' ... ')).toEqual([]);
  });
});
