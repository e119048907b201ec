/** @jest-environment ./test/support/onnx-node-environment.js */
import { spawnSync } from 'child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import Fastify, { FastifyInstance } from 'fastify';
import OpenAI, { APIError, toFile } from 'openai';
import { Stream } from 'openai/streaming';
import pino from 'pino';
import { WaveFile } from 'wavefile';
import type Redis from 'ioredis';
import { createAcp, type Acp } from '../../../services/acp';
import { loadEnv } from '../../../services/config/env';
import { WORKER_ENV } from '../../../services/config/worker';
import { openAiAudioPlugin } from '../../../services/orb/plugins/openai-audio';
import { toSrt } from '../../../services/audio-format';
import { asrRole } from '../../../services/workers/asr/role';
import { WhisperModel } from '../../../services/workers/asr/whisper';
import { ttsRole } from '../../../services/workers/tts/role';
import { PiperVoice } from '../../../services/workers/tts/voices';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { TINY_WHISPER_TRANSCRIPT, TINY_WHISPER_TRANSLATION, writeTinyWhisper } from '../../../tools/tiny-models/whisper';
import { TINY_PIPER_RATE, writeTinyPiperVoices } from '../../../tools/tiny-models/piper';
import { waitUntil } from '../../support/wait';

const fixture = readFileSync(join(__dirname, '../../fixtures/speech-16k.wav'));
const prefix = uniquePrefix('oa');
// Model loads and real ONNX runs on a busy 2-core CI machine: generous, never timed assertions.
jest.setTimeout(180_000);

const HAVE_FFMPEG = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
const SKIP_NOTE = 'SKIPPED: ffmpeg missing (apt-get install ffmpeg)';
const SPEECH = 'Hello there. How are you today? I am fine, thank you.';
const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Speech, 27 s of silence, speech: two VAD segments over 30 s apart, so whisperx decodes two windows. */
function twoWindowWav(): Buffer {
  const w = new WaveFile();
  w.fromBuffer(fixture);
  const s = w.getSamples(false, Int16Array) as unknown as Int16Array;
  const out = new Int16Array(s.length * 2 + 27 * 16000);
  out.set(s, 0);
  out.set(s, s.length + 27 * 16000);
  const o = new WaveFile();
  o.fromScratch(1, 16000, '16', out);
  return Buffer.from(o.toBuffer());
}

/** Seconds of audio in `bytes` (any container ffmpeg reads), by decoding all of it to 24 kHz PCM16. */
function decodedSeconds(bytes: Buffer): number {
  const r = spawnSync(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', '24000', 'pipe:1'],
    { input: bytes, maxBuffer: 1 << 28 },
  );
  if (r.status !== 0) throw new Error(`ffmpeg could not decode: ${r.stderr.toString()}`);
  return r.stdout.length / 2 / 24000;
}

function probe(bytes: Buffer): { codec: string; sampleRate: number } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate', '-of', 'json', 'pipe:0'], {
    input: bytes,
  });
  const s = (JSON.parse(r.stdout.toString()) as { streams: Array<{ codec_name: string; sample_rate: string }> }).streams[0];
  return { codec: s.codec_name, sampleRate: Number(s.sample_rate) };
}

/** ffmpeg processes this jest worker started (the gateway runs in it). */
function childFfmpegs(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return comm === 'ffmpeg' && ppid === process.pid ? [Number(pid)] : [];
      } catch {
        return [];
      }
    });
}

/**
 * Holds the n-th call (0-based) of `proto[method]` until `release` resolves (or 20 s pass, so a server that
 * buffers fails the order assertion instead of hanging), logging each call's start and end into `log`.
 */
function holdCall<T extends object>(
  proto: T,
  method: keyof T & string,
  hold: number,
  release: Promise<void>,
  log: string[],
): jest.SpyInstance {
  const original = proto[method] as unknown as (...a: unknown[]) => Promise<unknown>;
  let calls = 0;
  return jest.spyOn(proto, method as never).mockImplementation(async function (this: unknown, ...args: unknown[]) {
    const n = calls++;
    if (n === hold) await Promise.race([release, delay(20_000)]);
    log.push(`${method} ${n} start`);
    const r = await original.apply(this, args);
    log.push(`${method} ${n} end`);
    return r;
  } as never);
}

describe('OpenAI-compatible audio routes through the bus to the whisperx and xtts roles', () => {
  let dir: string;
  let redis: Redis;
  let acp: Acp;
  let app: FastifyInstance;
  let noFfmpeg: FastifyInstance;
  let workers: WorkerRuntime[] = [];
  let base: string;
  let openai: OpenAI;
  const log = pino({ level: 'silent' });
  const workerCfg = loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '100', ACP_TRIM_INTERVAL_MS: '0', LOG_LEVEL: 'silent' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orb-audio-'));
    writeTinyWhisper(join(dir, 'whisper'));
    writeTinyPiperVoices(join(dir, 'voices'));
    redis = testRedis();
    workers = [
      new WorkerRuntime(asrRole, {
        redis,
        worker: workerCfg,
        keyPrefix: prefix,
        env: { MODEL_DIR: join(dir, 'whisper') },
        http: false,
        log,
      }),
      new WorkerRuntime(ttsRole, {
        redis,
        worker: workerCfg,
        keyPrefix: prefix,
        env: { MODEL_DIR: join(dir, 'voices') },
        http: false,
        log,
      }),
    ];
    await Promise.all(workers.map((w) => w.start()));
    acp = createAcp(redis, { prefix, blockMs: 100 });
    app = Fastify({ logger: false });
    await app.register(openAiAudioPlugin, { bus: acp.bus, events: acp.events, redis, keys: acp.keys, timeoutMs: 60_000 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    openai = new OpenAI({ apiKey: 'test-key', baseURL: `${base}/v1`, maxRetries: 0 });
    // The same routes on a replica whose ffmpeg is missing.
    noFfmpeg = Fastify({ logger: false });
    await noFfmpeg.register(openAiAudioPlugin, {
      bus: acp.bus,
      events: acp.events,
      redis,
      keys: acp.keys,
      ffmpegPath: join(dir, 'no-such-ffmpeg'),
    });
  });

  afterAll(async () => {
    await app?.close();
    await noFfmpeg?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await acp?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => jest.restoreAllMocks());

  async function upload(bytes: Buffer, extra: Record<string, string> = {}, route = 'transcriptions'): Promise<Response> {
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'speech.wav');
    form.append('model', 'whisper-1');
    for (const [k, v] of Object.entries(extra)) form.set(k, v);
    return fetch(`${base}/v1/audio/${route}`, { method: 'POST', body: form });
  }

  async function speech(body: object, at = base): Promise<Response> {
    return fetch(`${at}/v1/audio/speech`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tts-1', voice: 'alloy', ...body }),
    });
  }

  /** The official client's error for a call that must fail. */
  async function failure(call: Promise<unknown>): Promise<APIError> {
    try {
      await call;
    } catch (err) {
      if (err instanceof APIError) return err;
      throw err;
    }
    throw new Error('expected the call to fail');
  }

  describe('transcriptions, with the official openai client', () => {
    it('json', async () => {
      const r = await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1' });
      expect(r.text).toBe(TINY_WHISPER_TRANSCRIPT);
    });

    it('text', async () => {
      const r = await openai.audio.transcriptions.create({
        file: await toFile(fixture, 'speech.wav'),
        model: 'whisper-1',
        response_format: 'text',
      });
      expect(String(r).trim()).toBe(TINY_WHISPER_TRANSCRIPT);
    });

    it('verbose_json with word and segment timestamps', async () => {
      const r = await openai.audio.transcriptions.create({
        file: await toFile(fixture, 'speech.wav'),
        model: 'whisper-1',
        language: 'en',
        response_format: 'verbose_json',
        timestamp_granularities: ['word', 'segment'],
      });
      expect(r.text).toBe(TINY_WHISPER_TRANSCRIPT);
      expect(r.language).toBe('english');
      expect(r.duration).toBeCloseTo(71015 / 16000, 2);
      expect(r.segments?.[0].start).toBeGreaterThan(0.3);
      expect(r.words?.map((w) => w.word)).toEqual(TINY_WHISPER_TRANSCRIPT.split(' '));
    });

    it('srt', async () => {
      const r = String(
        await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'srt' }),
      );
      expect(r).toMatch(new RegExp(`^1\\n00:00:00,\\d{3} --> 00:00:0\\d,\\d{3}\\n${TINY_WHISPER_TRANSCRIPT}\\n`));
    });

    it('vtt', async () => {
      const r = String(
        await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'vtt' }),
      );
      expect(r).toMatch(new RegExp(`^WEBVTT\\n\\n00:00:00\\.\\d{3} --> 00:00:0\\d\\.\\d{3}\\n${TINY_WHISPER_TRANSCRIPT}\\n`));
    });

    it('cleans up the ephemeral session it used', async () => {
      await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1' });
      expect(await redis.keys(`${prefix}turn:*`)).toEqual([]);
    });
  });

  describe('streaming transcription (stream=true): transcript.text.delta events, then transcript.text.done', () => {
    const long = twoWindowWav();
    const both = `${TINY_WHISPER_TRANSCRIPT} ${TINY_WHISPER_TRANSCRIPT}`;

    it.each(['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe', 'whisper'])(
      'model %s: the official client iterates at least two deltas and a done',
      async (model) => {
        const stream = await openai.audio.transcriptions.create({ file: await toFile(long, 'long.wav'), model, stream: true });
        const events: Array<{ type: string; delta?: string; text?: string }> = [];
        for await (const ev of stream) events.push(ev);
        const deltas = events.filter((e) => e.type === 'transcript.text.delta');
        expect(deltas.length).toBeGreaterThanOrEqual(2);
        expect(deltas.map((d) => d.delta).join('')).toBe(both);
        expect(events[events.length - 1]).toEqual({ type: 'transcript.text.done', text: both });
      },
    );

    it('sends the first delta before the last window is decoded (the decode of window 2 waits for the client to see it)', async () => {
      const order: string[] = [];
      let sawDelta!: () => void;
      const seen = new Promise<void>((r) => {
        sawDelta = r;
      });
      holdCall(WhisperModel.prototype, 'decode', 1, seen, order);
      const stream = await openai.audio.transcriptions.create({
        file: await toFile(long, 'long.wav'),
        model: 'gpt-4o-transcribe',
        stream: true,
      });
      for await (const ev of stream) {
        order.push(`client ${ev.type}`);
        sawDelta();
      }
      expect(order).toEqual([
        'decode 0 start',
        'decode 0 end',
        'client transcript.text.delta',
        'decode 1 start',
        'decode 1 end',
        'client transcript.text.delta',
        'client transcript.text.done',
      ]);
    });

    it('refuses stream=true with a subtitle format, naming the parameter', async () => {
      const res = await upload(fixture, { stream: 'true', response_format: 'srt' });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: {
          message: expect.stringContaining("response_format 'srt' cannot be streamed"),
          type: 'invalid_request_error',
          param: 'response_format',
          code: 'ORB_ERR_AUDIO_REQUEST',
        },
      });
    });
  });

  describe("translations (Whisper's translate task)", () => {
    it('the task reaches the decoder: translating the same audio says what the translate prompt decodes to', async () => {
      const file = await toFile(fixture, 'speech.wav');
      const tr = await openai.audio.translations.create({ file, model: 'whisper-1' });
      expect(tr.text).toBe(TINY_WHISPER_TRANSLATION);
      const same = await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1' });
      expect(same.text).toBe(TINY_WHISPER_TRANSCRIPT);
    });

    it('verbose_json says task translate; text and srt work; transcription-only parameters are refused', async () => {
      const v = await openai.audio.translations.create({
        file: await toFile(fixture, 'speech.wav'),
        model: 'whisper-1',
        response_format: 'verbose_json',
      });
      expect(v).toMatchObject({ task: 'translate', text: TINY_WHISPER_TRANSLATION });
      expect(
        String(
          await openai.audio.translations.create({
            file: await toFile(fixture, 'speech.wav'),
            model: 'whisper-1',
            response_format: 'text',
          }),
        ).trim(),
      ).toBe(TINY_WHISPER_TRANSLATION);
      const srt = String(
        await openai.audio.translations.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'srt' }),
      );
      expect(srt).toContain(TINY_WHISPER_TRANSLATION);
      const res = await upload(fixture, { language: 'en' }, 'translations');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: { param: 'language', code: 'ORB_ERR_AUDIO_REQUEST', message: expect.stringContaining("unknown parameter 'language'") },
      });
    });
  });

  describe("bad audio gets its 4xx, stable code and real message in OpenAI's envelope", () => {
    const wav = (rate: number, depth: string, samples: number[]) => {
      const w = new WaveFile();
      w.fromScratch(1, rate, depth, samples);
      return Buffer.from(w.toBuffer());
    };
    const absurd = Buffer.from(fixture);
    absurd.writeUInt32LE(0x40000000, 40);
    const mulaw = wav(8000, '16', [1, 2, 3, 4]);
    mulaw.writeUInt16LE(7, 20);
    mulaw.writeUInt16LE(8, 34);
    it.each([
      ['zero-length file', Buffer.alloc(0), 400, 'ORB_ERR_AUDIO_EMPTY'],
      ['truncated header', fixture.subarray(0, 30), 400, 'ORB_ERR_AUDIO_TRUNCATED'],
      ['truncated data', fixture.subarray(0, 2000), 400, 'ORB_ERR_AUDIO_TRUNCATED'],
      ['MP3 bytes', Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00xxxxxxxxxxxxxxxx', 'latin1'), 415, 'ORB_ERR_AUDIO_FORMAT'],
      ['mu-law WAV', mulaw, 415, 'ORB_ERR_AUDIO_FORMAT'],
      ['absurd duration', absurd, 413, 'ORB_ERR_AUDIO_TOO_LONG'],
      ['NaN samples', wav(16000, '32f', [0, NaN, 0.5]), 400, 'ORB_ERR_AUDIO_SAMPLES'],
    ])('%s', async (_name, bytes, status, code) => {
      const err = await failure(openai.audio.transcriptions.create({ file: await toFile(bytes, 'x.wav'), model: 'whisper-1' }));
      expect(err.status).toBe(status);
      expect(err.code).toBe(code);
      expect(err.param).toBe('file');
      expect(err.type).toBe('invalid_request_error');
      // What users see: the reason, not "Bad Request".
      expect(err.message).toMatch(new RegExp(`^${status} (Unsupported|Truncated|Audio|Invalid)`));
    });

    it.each([
      [
        'an unknown response_format',
        { response_format: 'mp4' },
        400,
        'ORB_ERR_AUDIO_REQUEST',
        'response_format',
        "response_format 'mp4' is not one of",
      ],
      [
        'a bad language',
        { language: 'English' },
        400,
        'ORB_ERR_UNSUPPORTED_PARAMETER',
        'language',
        "language 'English' (the ASR model knows",
      ],
      [
        'a bad temperature',
        { temperature: '3' },
        400,
        'ORB_ERR_AUDIO_REQUEST',
        'temperature',
        "temperature must be a number from 0 to 1, got '3'",
      ],
      ['a bad stream flag', { stream: 'yes' }, 400, 'ORB_ERR_AUDIO_REQUEST', 'stream', "stream must be true or false, got 'yes'"],
      [
        'an unknown model',
        { model: 'whisper-9' },
        404,
        'ORB_ERR_MODEL_NOT_FOUND',
        'model',
        "'whisper-9' (automatic-speech-recognition models here: whisper",
      ],
      ['a speech model', { model: 'tts-1' }, 400, 'ORB_ERR_MODEL_TASK', 'model', "Model 'tts-1' is a text-to-speech model"],
    ])('rejects %s before any work', async (_name, extra, status, code, param, message) => {
      const res = await upload(fixture, extra as Record<string, string>);
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { message: string; param: string; code: string } };
      expect(body.error).toMatchObject({ code, param });
      expect(body.error.message).toContain(message);
    });

    it('a missing file names the parameter', async () => {
      const form = new FormData();
      form.append('model', 'whisper-1');
      const res = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: {
          message: 'Invalid audio request: missing `file`',
          type: 'invalid_request_error',
          param: 'file',
          code: 'ORB_ERR_AUDIO_REQUEST',
        },
      });
    });
  });

  describe('speech in every format, with the official openai client', () => {
    let wavSeconds = 0;
    beforeAll(async () => {
      const w = new WaveFile();
      w.fromBuffer(
        Buffer.from(
          await (await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, response_format: 'wav' })).arrayBuffer(),
        ),
      );
      wavSeconds = (w.data as { samples: Uint8Array }).samples.length / 2 / (w.fmt as { sampleRate: number }).sampleRate;
    });

    it("wav: the voice's own rate, a correct header", async () => {
      const res = await openai.audio.speech.create({
        model: 'tts-1',
        voice: 'alloy',
        input: 'Hello there. How are you today?',
        response_format: 'wav',
      });
      expect(res.headers.get('content-type')).toBe('audio/wav');
      const w = new WaveFile();
      w.fromBuffer(Buffer.from(await res.arrayBuffer()));
      expect((w.fmt as { sampleRate: number }).sampleRate).toBe(TINY_PIPER_RATE);
      expect((w.data as { samples: Uint8Array }).samples.length).toBeGreaterThan(0);
      expect(wavSeconds).toBeGreaterThan(1);
    });

    it('pcm: 24 kHz PCM16, streamed chunked, same duration as the wav, identical for identical input', async () => {
      const a = await openai.audio.speech.create({ model: 'tts-1', voice: 'tiny-en', input: SPEECH, response_format: 'pcm' });
      expect(a.headers.get('content-type')).toBe('audio/pcm');
      expect(a.headers.get('transfer-encoding')).toBe('chunked');
      const bytes = Buffer.from(await a.arrayBuffer());
      const b = Buffer.from(
        await (await openai.audio.speech.create({ model: 'tts-1', voice: 'tiny-en', input: SPEECH, response_format: 'pcm' })).arrayBuffer(),
      );
      expect(bytes.equals(b)).toBe(true);
      expect(Math.abs(bytes.length / 2 / 24000 - wavSeconds)).toBeLessThanOrEqual(Math.max(0.05 * wavSeconds, 0.12));
    });

    it.each([
      ['mp3', 'audio/mpeg', 'mp3', 24000],
      ['opus', 'audio/ogg; codecs=opus', 'opus', 48000], // Opus always decodes at 48 kHz (RFC 7845); the header keeps 24 kHz as the input rate
      ['aac', 'audio/aac', 'aac', 24000],
      ['flac', 'audio/flac', 'flac', 24000],
    ] as const)(
      '%s: decodes, right content type, duration within max(5%%, 120 ms) of the wav',
      async (format, contentType, codec, sampleRate) => {
        if (!HAVE_FFMPEG) {
          console.log(`${SKIP_NOTE}: ${format} answers 501 instead`);
          const err = await failure(openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, response_format: format }));
          expect([err.status, err.code]).toEqual([501, 'ORB_ERR_ENCODER_MISSING']);
          return;
        }
        const res = await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, response_format: format });
        expect(res.headers.get('content-type')).toBe(contentType);
        const bytes = Buffer.from(await res.arrayBuffer());
        expect(probe(bytes)).toEqual({ codec, sampleRate });
        const seconds = decodedSeconds(bytes);
        expect(Math.abs(seconds - wavSeconds)).toBeLessThanOrEqual(Math.max(0.05 * wavSeconds, 0.12));
      },
    );

    it('mp3 is the default format', async () => {
      if (!HAVE_FFMPEG) {
        console.log(`${SKIP_NOTE}: the default (mp3) answers 501 instead`);
        expect((await speech({ input: 'Hi.' })).status).toBe(501);
        return;
      }
      const res = await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello world.' });
      expect(res.headers.get('content-type')).toBe('audio/mpeg');
      expect(probe(Buffer.from(await res.arrayBuffer())).codec).toBe('mp3');
    });

    it('mp3 bytes leave before the last sentence is synthesized (its synthesis waits for the client to see them)', async () => {
      if (!HAVE_FFMPEG) return console.log(SKIP_NOTE);
      const order: string[] = [];
      let sawBytes!: () => void;
      const seen = new Promise<void>((r) => {
        sawBytes = r;
      });
      holdCall(PiperVoice.prototype, 'synthesize', 2, seen, order);
      const res = await speech({ input: 'One. Two. Three.', response_format: 'mp3' });
      const reader = res.body!.getReader();
      const first = await reader.read();
      order.push('client first bytes');
      sawBytes();
      expect(first.value!.length).toBeGreaterThan(0);
      while (!(await reader.read()).done);
      expect(order.indexOf('client first bytes')).toBeGreaterThan(order.indexOf('synthesize 0 end'));
      expect(order.indexOf('client first bytes')).toBeLessThan(order.indexOf('synthesize 2 start'));
    });

    it('speed is honoured: speed 2 is half as long', async () => {
      const pcm = async (speed: number) =>
        Buffer.from(
          await (
            await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, response_format: 'pcm', speed })
          ).arrayBuffer(),
        ).length;
      const normal = await pcm(1);
      expect(Math.abs((await pcm(2)) - normal / 2)).toBeLessThanOrEqual(0.01 * normal);
    });

    it('a served voice name picks that voice; naming a voice model as `model` speaks with it', async () => {
      const ofVoice = async (body: object) =>
        Buffer.from(await (await speech({ input: 'Hello world.', response_format: 'pcm', ...body })).arrayBuffer());
      const tinyEn = await ofVoice({ voice: 'tiny-en' });
      expect((await ofVoice({ model: 'tiny-en', voice: 'alloy' })).equals(tinyEn)).toBe(true);
      expect((await ofVoice({ model: 'tts-1', voice: { id: 'tiny-en' } })).equals(tinyEn)).toBe(true);
    });
  });

  describe('speech as server-sent events (stream_format sse)', () => {
    async function sseEvents(res: Response): Promise<Array<{ type: string; audio?: string }>> {
      const out: Array<{ type: string; audio?: string }> = [];
      for await (const ev of Stream.fromSSEResponse<{ type: string; audio?: string }>(res, new AbortController())) out.push(ev);
      return out;
    }

    it.each(['tts-1', 'tts-1-hd', 'gpt-4o-mini-tts', 'tiny-en'])(
      'model %s: speech.audio.delta events (base64), then speech.audio.done',
      async (model) => {
        const res = await openai.audio.speech.create({
          model,
          voice: 'alloy',
          input: 'One. Two. Three.',
          response_format: 'pcm',
          stream_format: 'sse',
        });
        expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
        const events = await sseEvents(res);
        const deltas = events.filter((e) => e.type === 'speech.audio.delta');
        expect(deltas.length).toBeGreaterThanOrEqual(2);
        expect(events[events.length - 1]).toEqual({ type: 'speech.audio.done' });
        const plain = Buffer.from(
          await (
            await openai.audio.speech.create({ model, voice: 'alloy', input: 'One. Two. Three.', response_format: 'pcm' })
          ).arrayBuffer(),
        );
        expect(Buffer.concat(deltas.map((d) => Buffer.from(d.audio!, 'base64'))).equals(plain)).toBe(true);
      },
    );

    it('sends the first delta before the last sentence is synthesized', async () => {
      const order: string[] = [];
      let sawDelta!: () => void;
      const seen = new Promise<void>((r) => {
        sawDelta = r;
      });
      holdCall(PiperVoice.prototype, 'synthesize', 2, seen, order);
      const res = await openai.audio.speech.create({
        model: 'gpt-4o-mini-tts',
        voice: 'alloy',
        input: 'One. Two. Three.',
        response_format: 'pcm',
        stream_format: 'sse',
      });
      for await (const ev of Stream.fromSSEResponse<{ type: string }>(res, new AbortController())) {
        order.push(`client ${ev.type}`);
        sawDelta();
      }
      expect(order.indexOf('client speech.audio.delta')).toBeLessThan(order.indexOf('synthesize 2 start'));
      expect(order.filter((o) => o === 'client speech.audio.delta')).toHaveLength(3);
    });

    it("mp3 over SSE: the deltas concatenate to a decodable mp3 of the wav's duration", async () => {
      if (!HAVE_FFMPEG) return console.log(SKIP_NOTE);
      const res = await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, stream_format: 'sse' });
      const deltas = (await sseEvents(res)).filter((e) => e.type === 'speech.audio.delta');
      const mp3 = Buffer.concat(deltas.map((d) => Buffer.from(d.audio!, 'base64')));
      expect(probe(mp3).codec).toBe('mp3');
      const wav = new WaveFile();
      wav.fromBuffer(
        Buffer.from(
          await (await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: SPEECH, response_format: 'wav' })).arrayBuffer(),
        ),
      );
      const wavSeconds = (wav.data as { samples: Uint8Array }).samples.length / 2 / TINY_PIPER_RATE;
      expect(Math.abs(decodedSeconds(mp3) - wavSeconds)).toBeLessThanOrEqual(Math.max(0.05 * wavSeconds, 0.12));
    });
  });

  describe('speech errors: OpenAI envelope, the parameter named, the real message through the client', () => {
    it.each([
      ['an unknown voice', { voice: 'robot-9' }, 400, 'ORB_ERR_UNKNOWN_VOICE', 'voice', "'robot-9'"],
      [
        'an unknown format',
        { response_format: 'ogg' },
        400,
        'ORB_ERR_BAD_REQUEST',
        'response_format',
        'response_format must be equal to one of the allowed values',
      ],
      [
        'an unknown stream_format',
        { stream_format: 'ws' },
        400,
        'ORB_ERR_BAD_REQUEST',
        'stream_format',
        'stream_format must be equal to one of the allowed values',
      ],
      ['speed out of range', { speed: 9 }, 400, 'ORB_ERR_BAD_REQUEST', 'speed', 'speed must be <= 4'],
      [
        'input over 4096 characters',
        { input: 'x'.repeat(5000) },
        400,
        'ORB_ERR_BAD_REQUEST',
        'input',
        'input must NOT have more than 4096 characters',
      ],
      ['a missing input', { input: undefined }, 400, 'ORB_ERR_BAD_REQUEST', 'input', "must have required property 'input'"],
      ['an unknown parameter', { pitch: 3 }, 400, 'ORB_ERR_AUDIO_REQUEST', 'pitch', "unknown parameter 'pitch'"],
      [
        'an unknown model',
        { model: 'tts-9' },
        404,
        'ORB_ERR_MODEL_NOT_FOUND',
        'model',
        "'tts-9' (text-to-speech models here: en_US-tiny-low, tiny-en",
      ],
      [
        'a transcription model',
        { model: 'whisper-1' },
        400,
        'ORB_ERR_MODEL_TASK',
        'model',
        "Model 'whisper-1' is a automatic-speech-recognition model",
      ],
    ])('%s', async (_name, body, status, code, param, message) => {
      const err = await failure(
        openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hi.', response_format: 'pcm', ...body } as never),
      );
      expect([err.status, err.code, err.param ?? null]).toEqual([status, code, param]);
      expect(err.message).toContain(message);
    });

    it('malformed JSON gets the envelope too', async () => {
      const res = await fetch(`${base}/v1/audio/speech`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"model":',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'ORB_ERR_MALFORMED_JSON' } });
    });

    it('without ffmpeg: the compressed formats answer 501 naming the missing encoder, wav and pcm still work', async () => {
      const at = await noFfmpeg.listen({ port: 0, host: '127.0.0.1' });
      for (const format of ['mp3', 'opus', 'aac', 'flac', undefined]) {
        const res = await speech({ input: 'Hi.', ...(format ? { response_format: format } : {}) }, at);
        expect(res.status).toBe(501);
        const body = (await res.json()) as { error: { message: string; code: string; param: string; type: string } };
        expect(body.error).toMatchObject({ code: 'ORB_ERR_ENCODER_MISSING', param: 'response_format', type: 'server_error' });
        expect(body.error.message).toContain(`response_format ${format ?? 'mp3'} needs the ffmpeg encoder`);
        expect(body.error.message).toContain('ENOENT');
      }
      const wav = await speech({ input: 'Hi.', response_format: 'wav' }, at);
      expect([wav.status, wav.headers.get('content-type')]).toEqual([200, 'audio/wav']);
      const pcm = await speech({ input: 'Hi.', response_format: 'pcm' }, at);
      expect(pcm.status).toBe(200);
      expect((await pcm.arrayBuffer()).byteLength).toBeGreaterThan(0);
    });
  });

  describe('breaking the stream', () => {
    it('a client that hangs up mid-stream leaves no ffmpeg and no session keys behind, and xtts stops synthesizing for it', async () => {
      if (!HAVE_FFMPEG) return console.log(SKIP_NOTE);
      let release!: () => void;
      const order: string[] = [];
      const okBefore = await workers[1].count('ok');
      holdCall(
        PiperVoice.prototype,
        'synthesize',
        1,
        new Promise<void>((r) => {
          release = r;
        }),
        order,
      );
      const ac = new AbortController();
      const res = await fetch(`${base}/v1/audio/speech`, {
        method: 'POST',
        signal: ac.signal,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'One. Two. Three.', response_format: 'mp3' }),
      });
      const reader = res.body!.getReader();
      await reader.read();
      expect(childFfmpegs()).toHaveLength(1);
      ac.abort();
      // The gateway marks the turn abandoned once it sees the hang-up; only then may sentence 2 finish.
      await waitUntil('the turn to be marked abandoned', async () => (await redis.keys(`${prefix}turn:*:abandoned`)).length === 1);
      release();
      await waitUntil('ffmpeg to exit', () => childFfmpegs().length === 0);
      // The worker deletes the marker (and anything it wrote) when it sees it: then the session is gone for good.
      await waitUntil('the worker to drop the abandoned turn', async () => (await redis.keys(`${prefix}turn:*`)).length === 0);
      await waitUntil('the xtts job to be acknowledged', async () => (await workers[1].count('ok')) > okBefore);
      expect(order).toEqual(['synthesize 0 start', 'synthesize 0 end', 'synthesize 1 start', 'synthesize 1 end']);
    });

    it('ffmpeg killed mid-stream: the response is cut off (an error, not a clean end) and the next request works', async () => {
      if (!HAVE_FFMPEG) return console.log(SKIP_NOTE);
      let release!: () => void;
      holdCall(
        PiperVoice.prototype,
        'synthesize',
        1,
        new Promise<void>((r) => {
          release = r;
        }),
        [],
      );
      const res = await speech({ input: 'One. Two. Three.', response_format: 'mp3' });
      const reader = res.body!.getReader();
      await reader.read();
      const [pid] = childFfmpegs();
      process.kill(pid, 'SIGKILL');
      release();
      await expect(
        (async () => {
          while (!(await reader.read()).done);
        })(),
      ).rejects.toThrow();
      jest.restoreAllMocks();
      const again = await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello.', response_format: 'mp3' });
      expect(probe(Buffer.from(await again.arrayBuffer())).codec).toBe('mp3');
      await waitUntil('session keys to be deleted', async () => (await redis.keys(`${prefix}turn:*`)).length === 0);
    });
  });

  describe('more ways to break it', () => {
    it('input with nothing to say: 200 and an empty but valid reply in every format', async () => {
      for (const format of ['wav', 'pcm', ...(HAVE_FFMPEG ? ['mp3', 'flac'] : [])]) {
        const res = await speech({ input: '... !!!', response_format: format });
        expect([format, res.status]).toEqual([format, 200]);
        const bytes = Buffer.from(await res.arrayBuffer());
        if (format === 'mp3' || format === 'flac') expect(decodedSeconds(bytes)).toBeLessThan(0.2);
        if (format === 'pcm') expect(bytes.length).toBe(0);
      }
    });

    it.each([
      ['a voice object without id', { voice: {} }, 'voice'],
      ['a numeric voice', { voice: 7 }, 'voice'],
      ['an empty input', { input: '' }, 'input'],
      ['a string speed', { speed: 'fast' }, 'speed'],
    ])('%s: 400 naming the parameter', async (_name, body, param) => {
      const res = await speech({ input: 'Hi.', response_format: 'pcm', ...body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toBe(param);
    });

    it('two files in one upload, and a file under another field name, are refused', async () => {
      const form = new FormData();
      form.append('model', 'whisper-1');
      form.append('file', new Blob([fixture]), 'a.wav');
      form.append('file', new Blob([fixture]), 'b.wav');
      const two = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form });
      expect(two.status).toBe(400);
      expect(((await two.json()) as { error: { code: string } }).error.code).toBe('ORB_ERR_AUDIO_REQUEST');
      const other = new FormData();
      other.append('model', 'whisper-1');
      other.append('audio', new Blob([fixture]), 'a.wav');
      const res = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: other });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: { param: 'audio', message: expect.stringContaining("unexpected file field 'audio'") },
      });
    });

    it('a client that leaves a streaming transcription early leaves no session keys behind', async () => {
      let release!: () => void;
      holdCall(
        WhisperModel.prototype,
        'decode',
        1,
        new Promise<void>((r) => {
          release = r;
        }),
        [],
      );
      const ac = new AbortController();
      const stream = await openai.audio.transcriptions.create(
        { file: await toFile(twoWindowWav(), 'long.wav'), model: 'whisper-1', stream: true },
        { signal: ac.signal },
      );
      for await (const ev of stream) {
        expect(ev.type).toBe('transcript.text.delta');
        break; // leaves after the first delta: the client closes the connection
      }
      await waitUntil('the turn to be marked abandoned', async () => (await redis.keys(`${prefix}turn:*:abandoned`)).length === 1);
      release();
      await waitUntil('the worker to drop the abandoned turn', async () => (await redis.keys(`${prefix}turn:*`)).length === 0);
    });

    it('wav over SSE: one delta carrying the whole wav', async () => {
      const res = await openai.audio.speech.create({
        model: 'tts-1',
        voice: 'alloy',
        input: 'One. Two.',
        response_format: 'wav',
        stream_format: 'sse',
      });
      const events: Array<{ type: string; audio?: string }> = [];
      for await (const ev of Stream.fromSSEResponse<{ type: string; audio?: string }>(res, new AbortController())) events.push(ev);
      expect(events.map((e) => e.type)).toEqual(['speech.audio.delta', 'speech.audio.done']);
      const w = new WaveFile();
      w.fromBuffer(Buffer.from(events[0].audio!, 'base64'));
      expect((w.fmt as { sampleRate: number }).sampleRate).toBe(TINY_PIPER_RATE);
    });
  });

  describe('GET /v1/models, built from the models the workers announced', () => {
    it('an empty model path segment is a 404 in the envelope', async () => {
      const res = await fetch(`${base}/v1/models/`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ORB_ERR_MODEL_NOT_FOUND');
    });
    it("lists the loaded Whisper model, each voice model, and OpenAI's IDs as aliases of them", async () => {
      const page = await openai.models.list();
      const byId = Object.fromEntries(page.data.map((m) => [m.id, m as unknown as Record<string, unknown>]));
      expect(Object.keys(byId).sort()).toEqual([
        'en_US-tiny-low',
        'gpt-4o-mini-transcribe',
        'gpt-4o-mini-tts',
        'gpt-4o-transcribe',
        'tiny-en',
        'tts-1',
        'tts-1-hd',
        'whisper',
        'whisper-1',
      ]);
      for (const m of page.data) {
        expect(m.object).toBe('model');
        expect(Number.isInteger(m.created) && m.created > 1_600_000_000).toBe(true);
        expect(typeof m.owned_by).toBe('string');
      }
      expect(byId.whisper).toMatchObject({ task: 'automatic-speech-recognition', owned_by: 'ucm4-orb', languages: ['en', 'de'] });
      expect(byId['whisper-1']).toMatchObject({ task: 'automatic-speech-recognition', root: 'whisper' });
      expect(byId['tts-1']).toMatchObject({ task: 'text-to-speech', voices: ['en_US-tiny-low', 'tiny-en'] });
      expect(await openai.models.retrieve('whisper-1')).toMatchObject({ id: 'whisper-1', object: 'model', root: 'whisper' });
      const err = await failure(openai.models.retrieve('gpt-5'));
      expect([err.status, err.code, err.param]).toEqual([404, 'ORB_ERR_MODEL_NOT_FOUND', 'model']);
    });

    it('follows the workers: a voice appears when its worker loads it and leaves when the worker stops', async () => {
      const extra = join(dir, 'extra-voices');
      writeTinyPiperVoices(extra, { nested: 'extra-voice' });
      // Its own pod name: two xtts workers in one process would otherwise share a consumer name.
      const worker = loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '100', ACP_TRIM_INTERVAL_MS: '0', LOG_LEVEL: 'silent', POD_NAME: 'xtts-extra' });
      const w = new WorkerRuntime(ttsRole, { redis, worker, keyPrefix: prefix, env: { MODEL_DIR: extra }, http: false, log });
      await w.start();
      try {
        expect((await openai.models.list()).data.map((m) => m.id)).toContain('extra-voice');
        expect(await openai.models.retrieve('extra-voice')).toMatchObject({ task: 'text-to-speech', voices: ['extra-voice'] });
      } finally {
        await w.stop();
      }
      expect((await openai.models.list()).data.map((m) => m.id)).not.toContain('extra-voice');
    });
  });
});

describe('subtitle formatting', () => {
  it('writes SRT timestamps with hours and milliseconds', () => {
    expect(toSrt([{ start: 3661.5, end: 3662.25, text: ' hi ' }])).toBe('1\n01:01:01,500 --> 01:01:02,250\nhi\n');
  });
});
