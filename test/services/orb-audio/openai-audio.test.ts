/** @jest-environment ./test/support/tiny-models/onnx-node-environment.js */
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import Fastify, { FastifyInstance } from 'fastify';
import OpenAI, { toFile } from 'openai';
import pino from 'pino';
import { WaveFile } from 'wavefile';
import type Redis from 'ioredis';
import { createAcp, type Acp } from '../../../services/acp';
import { loadEnv } from '../../../services/config/env';
import { WORKER_ENV } from '../../../services/config/worker';
import { openAiAudioPlugin, toSrt } from '../../../services/orb/plugins/openai-audio';
import { asrRole } from '../../../services/workers/asr/role';
import { ttsRole } from '../../../services/workers/tts/role';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { TINY_WHISPER_TRANSCRIPT, writeTinyWhisper } from '../../support/tiny-models/whisper';
import { TINY_PIPER_RATE, writeTinyPiperVoices } from '../../support/tiny-models/piper';

const fixture = readFileSync(join(__dirname, '../../fixtures/speech-16k.wav'));
const prefix = uniquePrefix('oa');
// Model loads and real ONNX runs on a busy 2-core CI machine: generous, never timed assertions.
jest.setTimeout(120_000);

describe('OpenAI-compatible audio routes through the bus to the whisperx and xtts roles', () => {
  let dir: string;
  let redis: Redis;
  let acp: Acp;
  let app: FastifyInstance;
  let workers: WorkerRuntime[] = [];
  let base: string;
  let openai: OpenAI;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orb-audio-'));
    writeTinyWhisper(join(dir, 'whisper'));
    writeTinyPiperVoices(join(dir, 'voices'));
    redis = testRedis();
    const worker = loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '100', ACP_TRIM_INTERVAL_MS: '0', LOG_LEVEL: 'silent' });
    const log = pino({ level: 'silent' });
    workers = [
      new WorkerRuntime(asrRole, { redis, worker, keyPrefix: prefix, env: { MODEL_DIR: join(dir, 'whisper') }, http: false, log }),
      new WorkerRuntime(ttsRole, { redis, worker, keyPrefix: prefix, env: { MODEL_DIR: join(dir, 'voices') }, http: false, log }),
    ];
    await Promise.all(workers.map((w) => w.start()));
    acp = createAcp(redis, { prefix, blockMs: 100 });
    app = Fastify({ logger: false });
    await app.register(openAiAudioPlugin, { bus: acp.bus, events: acp.events, redis, keys: acp.keys, timeoutMs: 60_000 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    openai = new OpenAI({ apiKey: 'test-key', baseURL: `${base}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await acp?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function upload(bytes: Buffer, name = 'speech.wav', format?: string, extra: Record<string, string> = {}): Promise<Response> {
    const form = new FormData();
    form.append('file', new Blob([bytes]), name);
    form.append('model', 'whisper-1');
    if (format) form.append('response_format', format);
    for (const [k, v] of Object.entries(extra)) form.append(k, v);
    return fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form });
  }

  describe('transcriptions, with the official openai client', () => {
    it('json', async () => {
      const r = await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1' });
      expect(r.text).toBe(TINY_WHISPER_TRANSCRIPT);
    });

    it('text', async () => {
      const r = await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'text' });
      expect(String(r).trim()).toBe(TINY_WHISPER_TRANSCRIPT);
    });

    it('verbose_json with word and segment timestamps', async () => {
      const r = await openai.audio.transcriptions.create({
        file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', language: 'en', response_format: 'verbose_json',
        timestamp_granularities: ['word', 'segment'],
      });
      expect(r.text).toBe(TINY_WHISPER_TRANSCRIPT);
      expect(r.language).toBe('english');
      expect(r.duration).toBeCloseTo(71015 / 16000, 2);
      expect(r.segments?.[0].start).toBeGreaterThan(0.3);
      expect(r.words?.map((w) => w.word)).toEqual(TINY_WHISPER_TRANSCRIPT.split(' '));
    });

    it('srt', async () => {
      const r = String(await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'srt' }));
      expect(r).toMatch(new RegExp(`^1\\n00:00:00,\\d{3} --> 00:00:0\\d,\\d{3}\\n${TINY_WHISPER_TRANSCRIPT}\\n`));
    });

    it('vtt', async () => {
      const r = String(await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1', response_format: 'vtt' }));
      expect(r).toMatch(new RegExp(`^WEBVTT\\n\\n00:00:00\\.\\d{3} --> 00:00:0\\d\\.\\d{3}\\n${TINY_WHISPER_TRANSCRIPT}\\n`));
    });

    it('cleans up the ephemeral session it used', async () => {
      await openai.audio.transcriptions.create({ file: await toFile(fixture, 'speech.wav'), model: 'whisper-1' });
      const left = await redis.keys(`${prefix}turn:*`);
      expect(left).toEqual([]);
    });
  });

  describe('bad audio gets its 4xx and stable code', () => {
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
      const res = await upload(bytes);
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ code, statusCode: status });
    });

    it('rejects an unknown response_format and a missing file before any work', async () => {
      const r1 = await upload(fixture, 'speech.wav', 'mp4');
      expect(r1.status).toBe(400);
      expect(((await r1.json()) as { code: string }).code).toBe('ORB_ERR_AUDIO_REQUEST');
      const form = new FormData();
      form.append('model', 'whisper-1');
      const r2 = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form });
      expect(r2.status).toBe(400);
      expect(((await r2.json()) as { code: string }).code).toBe('ORB_ERR_AUDIO_REQUEST');
    });
  });

  describe('speech, with the official openai client', () => {
    it('returns a WAV of the voice for an OpenAI voice name', async () => {
      const res = await openai.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'Hello there. How are you today?', response_format: 'wav' });
      const bytes = Buffer.from(await res.arrayBuffer());
      const w = new WaveFile();
      w.fromBuffer(bytes);
      expect((w.fmt as { sampleRate: number }).sampleRate).toBe(TINY_PIPER_RATE);
      expect((w.data as { samples: Uint8Array }).samples.length).toBeGreaterThan(0);
    });

    it('returns raw PCM16 for response_format pcm, identical for identical input', async () => {
      const a = Buffer.from(await (await openai.audio.speech.create({ model: 'tts-1', voice: 'tiny-en', input: 'Hello world.', response_format: 'pcm' })).arrayBuffer());
      const b = Buffer.from(await (await openai.audio.speech.create({ model: 'tts-1', voice: 'tiny-en', input: 'Hello world.', response_format: 'pcm' })).arrayBuffer());
      expect(a.length % 2).toBe(0);
      expect(a.length).toBeGreaterThan(0);
      expect(a.equals(b)).toBe(true);
    });

    it('streams pcm sentence by sentence (chunked) and leaves no session keys behind', async () => {
      const res = await fetch(`${base}/v1/audio/speech`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tts-1', voice: 'tiny-en', input: 'One. Two. Three.', response_format: 'pcm' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('transfer-encoding')).toBe('chunked');
      expect(res.headers.get('x-sample-rate')).toBe('24000');
      const whole = Buffer.from(await res.arrayBuffer());
      const parts = await Promise.all(['One.', 'Two.', 'Three.'].map(async (input) => Buffer.from(await (await openai.audio.speech.create({
        model: 'tts-1', voice: 'tiny-en', input, response_format: 'pcm' })).arrayBuffer())));
      // Each sentence is synthesized and resampled on its own, so the stream is exactly their concatenation.
      expect(whole.equals(Buffer.concat(parts))).toBe(true);
      expect(await redis.keys(`${prefix}turn:*`)).toEqual([]);
    });

    it('rejects input over the 4096-character limit with 400 before any work', async () => {
      const res = await fetch(`${base}/v1/audio/speech`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tts-1', voice: 'tiny-en', input: 'x'.repeat(5000) }),
      });
      expect(res.status).toBe(400);
    });

    it('rejects an unsupported response_format with 400', async () => {
      const res = await fetch(`${base}/v1/audio/speech`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'hi', response_format: 'mp3' }),
      });
      expect(res.status).toBe(400);
    });
  });
});

describe('subtitle formatting', () => {
  it('writes SRT timestamps with hours and milliseconds', () => {
    expect(toSrt([{ id: 0, start: 3661.5, end: 3662.25, text: ' hi ', tokens: [], avg_logprob: 0 }])).toBe('1\n01:01:01,500 --> 01:01:02,250\nhi\n');
  });
});
