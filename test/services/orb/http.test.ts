/**
 * HTTP contract of one gateway on the real Redis, through app.inject: auth, sessions, every bad input's
 * 4xx + code. Load shedding below runs on real sockets (it is about connections under pressure).
 */
import type { FastifyInstance } from 'fastify';
import { WaveFile } from 'wavefile';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { TurnEventStream, vaultKeys } from '../../../services/acp';
import { auth, http, inject, listen, makeApp, seedIdentity } from './support';

const prefix = uniquePrefix('orbhttp');
const redis = testRedis();
let app: FastifyInstance;
type Req = Parameters<typeof http>[1];

function wav(rate: number, channels = 1, bits = '16'): Buffer {
  const w = new WaveFile();
  w.fromScratch(channels, rate, bits, channels === 1 ? new Array(320).fill(0) : [new Array(320).fill(0), new Array(320).fill(0)]);
  return Buffer.from(w.toBuffer());
}

beforeAll(async () => {
  await seedIdentity(redis, prefix);
  app = await makeApp(prefix, 'orb-http-0', { ORB_BODY_LIMIT_BYTES: '65536' });
});

afterAll(async () => {
  await app.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describe('probes and metrics', () => {
  test('livez, readyz and metrics need no key', async () => {
    expect((await inject(app, { url: '/livez' })).json()).toEqual({ status: 'ok' });
    const ready = await inject(app, { url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({
      status: 'ready',
      identity_version: '1.12',
      checks: { vault: true, identity: true, draining: false },
    });
    const metrics = await inject(app, { url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('orb_http_request_duration_seconds');
    expect(metrics.body).toContain('orb_active_sockets');
    expect(metrics.body).toContain('nodejs_eventloop_lag_seconds');
  });

  test('request ids are echoed, or made when absent', async () => {
    const given = await inject(app, { url: '/livez', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await inject(app, { url: '/livez' });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('auth', () => {
  test.each([
    ['no header', {}],
    ['unknown key', { authorization: 'Bearer not-a-key-at-all-000000' }],
    ['wrong scheme', { authorization: 'Basic YWxpY2U6eA==' }],
  ])('%s -> 401 ORB_ERR_UNAUTHORIZED', async (_name, headers) => {
    const res = await inject(app, { method: 'POST', url: '/v1/sessions', headers });
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('ORB_ERR_UNAUTHORIZED');
  });

  test("OpenAI-shaped routes answer in OpenAI's envelope (auth included); the ORB's own routes keep theirs", async () => {
    for (const [method, url] of [
      ['GET', '/v1/models'],
      ['GET', '/v1/models/whisper-1'],
      ['POST', '/v1/audio/speech'],
      ['POST', '/v1/audio/transcriptions'],
      ['POST', '/v1/audio/translations'],
    ]) {
      const res = await inject(app, { method, url, payload: method === 'POST' ? {} : undefined });
      expect([url, res.statusCode]).toEqual([url, 401]);
      expect(res.json()).toEqual({
        error: {
          message: expect.stringContaining('Missing or invalid API key'),
          type: 'authentication_error',
          param: null,
          code: 'ORB_ERR_UNAUTHORIZED',
        },
      });
    }
    expect((await inject(app, { url: '/v1/identity' })).json()).toMatchObject({
      statusCode: 401,
      code: 'ORB_ERR_UNAUTHORIZED',
      error: 'Unauthorized',
    });
    // No worker has announced a model to this vault: the list is empty, and the OpenAI IDs say why they cannot run.
    expect((await inject(app, { url: '/v1/models', headers: auth('alice') })).json()).toEqual({ object: 'list', data: [] });
    const speech = await inject(app, {
      method: 'POST',
      url: '/v1/audio/speech',
      headers: auth('alice'),
      payload: { model: 'tts-1', input: 'Hi.', voice: 'alloy' },
    });
    expect(speech.statusCode).toBe(503);
    expect(speech.json().error).toMatchObject({ code: 'ORB_ERR_MODEL_UNAVAILABLE', param: 'model', type: 'server_error' });
  });

  test('plain and sha256-provisioned keys both work', async () => {
    expect((await inject(app, { url: '/v1/identity', headers: auth('alice') })).statusCode).toBe(200);
    expect((await inject(app, { url: '/v1/identity', headers: auth('bob') })).statusCode).toBe(200);
  });
});

describe('sessions', () => {
  test('created, read back with its events, invisible to another key', async () => {
    const created = await inject(app, {
      method: 'POST',
      url: '/v1/sessions',
      headers: auth('alice'),
      payload: { metadata: { client: 'jest' } },
    });
    expect(created.statusCode).toBe(201);
    const s = created.json();
    expect(s).toMatchObject({ last_seq: 0, metadata: { client: 'jest' } });
    expect(await redis.hget(`${prefix}session:${s.id}`, 'owner')).toBe('alice');

    const events = new TurnEventStream(redis, vaultKeys(prefix));
    await events.append(s.id, { type: 'turn.start', turn: 't1', data: { source: 'text' } });
    await events.append(s.id, { type: 'transcript', turn: 't1', data: { text: 'hello', final: true } });
    await events.append(s.id, { type: 'reply', turn: 't1', data: { text: 'hi Ana' } });
    await events.append(s.id, { type: 'turn.end', turn: 't1', data: { outcome: 'ok' } });

    const read = await inject(app, { url: `/v1/sessions/${s.id}`, headers: auth('alice') });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({
      id: s.id,
      last_seq: 4,
      turns: [{ turn: 't1', started_seq: 1, source: 'text', transcript: 'hello', reply: 'hi Ana', outcome: 'ok' }],
    });
    expect(read.json().events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4]);
    const after = await inject(app, { url: `/v1/sessions/${s.id}?after_seq=2`, headers: auth('alice') });
    expect(after.json().events.map((e: { seq: number }) => e.seq)).toEqual([3, 4]);

    const other = await inject(app, { url: `/v1/sessions/${s.id}`, headers: auth('bob') });
    expect(other.statusCode).toBe(404);
    expect(other.json().code).toBe('ORB_ERR_UNKNOWN_SESSION');
    await events.close();
  });
});

describe('bad input: each gets its 4xx and code, and the app keeps serving', () => {
  let sid: string;
  beforeAll(async () => {
    sid = (await inject(app, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id;
  });
  afterEach(async () => {
    expect((await inject(app, { url: '/livez' })).statusCode).toBe(200);
  });

  const cases: [string, () => Req, number, string][] = [
    [
      'malformed JSON',
      () => ({
        method: 'POST',
        url: '/v1/turns',
        headers: { ...auth('alice'), 'content-type': 'application/json' },
        payload: '{"text": "hi"',
      }),
      400,
      'ORB_ERR_MALFORMED_JSON',
    ],
    [
      'JSON of the wrong shape',
      () => ({ method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { txt: 'hi' } }),
      400,
      'ORB_ERR_BAD_REQUEST',
    ],
    [
      'body over the limit',
      () => ({
        method: 'POST',
        url: '/v1/sessions',
        headers: { ...auth('alice'), 'content-type': 'application/json' },
        payload: JSON.stringify({ metadata: { a: 'x'.repeat(70_000) } }),
      }),
      413,
      'ORB_ERR_BODY_TOO_LARGE',
    ],
    [
      'unsupported content type',
      () => ({ method: 'POST', url: '/v1/turns', headers: { ...auth('alice'), 'content-type': 'text/csv' }, payload: 'a,b' }),
      415,
      'ORB_ERR_UNSUPPORTED_MEDIA',
    ],
    [
      'WAV at 44.1 kHz',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/wav' },
        payload: wav(44_100),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      'stereo WAV',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/wav' },
        payload: wav(16_000, 2),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      '8-bit WAV',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/wav' },
        payload: wav(16_000, 1, '8'),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      'not a WAV at all',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/wav' },
        payload: Buffer.from('hello world, not RIFF'),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      'raw PCM at 8 kHz',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/pcm;rate=8000' },
        payload: Buffer.alloc(640),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      'raw PCM of odd length',
      () => ({
        method: 'POST',
        url: `/v1/turns?session=${sid}`,
        headers: { ...auth('alice'), 'content-type': 'audio/pcm;rate=16000' },
        payload: Buffer.alloc(641),
      }),
      415,
      'ORB_ERR_AUDIO_FORMAT',
    ],
    [
      'unknown session',
      () => ({ url: '/v1/sessions/00000000-0000-4000-8000-000000000000', headers: auth('alice') }),
      404,
      'ORB_ERR_UNKNOWN_SESSION',
    ],
    [
      'unknown session on a turn',
      () => ({
        method: 'POST',
        url: '/v1/turns',
        headers: auth('alice'),
        payload: { session: '00000000-0000-4000-8000-000000000000', text: 'hi' },
      }),
      404,
      'ORB_ERR_UNKNOWN_SESSION',
    ],
    ['seq after the last one', () => ({ url: `/v1/sessions/${sid}?after_seq=99`, headers: auth('alice') }), 400, 'ORB_ERR_BAD_SEQ'],
    ['negative seq', () => ({ url: `/v1/sessions/${sid}?after_seq=-1`, headers: auth('alice') }), 400, 'ORB_ERR_BAD_SEQ'],
    ['non-numeric seq', () => ({ url: `/v1/sessions/${sid}?after_seq=abc`, headers: auth('alice') }), 400, 'ORB_ERR_BAD_SEQ'],
    ['unknown route', () => ({ url: '/v1/nope', headers: auth('alice') }), 404, 'ORB_ERR_NOT_FOUND'],
  ];
  test.each(cases)('%s', async (_name, req, status, code) => {
    const res = await inject(app, req());
    expect({ status: res.statusCode, code: res.json().code }).toEqual({ status, code });
    expect(res.json().message).toEqual(expect.any(String));
  });
});

describe('turns go to the bus and are never faked', () => {
  test('text turn with no workers: job published, 504 at the deadline', async () => {
    const res = await inject(app, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { text: 'hello there' } });
    expect(res.statusCode).toBe(504);
    expect(res.json().code).toBe('ORB_ERR_TURN_TIMEOUT');
    expect(await redis.xlen(`${prefix}acp:jobs:cali`)).toBeGreaterThan(0);
    expect(await redis.xlen(`${prefix}acp:jobs:core:0`)).toBeGreaterThan(0);
  });

  test('audio turn: utterance stored in the vault and referenced by the ASR job', async () => {
    const sid = (await inject(app, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id;
    const res = await inject(app, {
      method: 'POST',
      url: `/v1/turns?session=${sid}`,
      headers: { ...auth('alice'), 'content-type': 'audio/wav' },
      payload: wav(16_000),
    });
    expect(res.statusCode).toBe(504);
    const jobs = (await redis.xrange(`${prefix}acp:jobs:whisperx`, '-', '+')) as [string, string[]][];
    const env = JSON.parse(jobs[jobs.length - 1][1][1]);
    expect(env).toMatchObject({ protocol: 'acp/1.0', kind: 'asr.transcribe', session: sid });
    const ref = env.parts[0].content_ref as string;
    expect(ref).toBe(`${prefix}turn:${sid}:${env.turn}:audio`);
    expect(await redis.strlen(ref)).toBe(640);
  });
});

describe('pressure and identity', () => {
  test('under pressure: 503 + Retry-After with ORB_ERR_UNDER_PRESSURE; probes still answer', async () => {
    const pressed = await makeApp(prefix, 'orb-http-pressed', {}, { underPressure: { maxHeapUsedBytes: 1, sampleInterval: 10 } });
    const ph = await listen(pressed);
    try {
      const res = await (async () => {
        for (;;) {
          const r = await http(ph, { url: '/v1/identity', headers: auth('alice') });
          if (r.statusCode === 503) return r;
          await new Promise((ok) => setTimeout(ok, 20));
        }
      })();
      expect(res.json().code).toBe('ORB_ERR_UNDER_PRESSURE');
      expect(res.headers['retry-after']).toBe('5');
      expect((await http(ph, { url: '/livez' })).statusCode).toBe(200);
    } finally {
      await pressed.close();
    }
  });

  test('no identity in the vault: not ready, /v1/identity 503', async () => {
    const empty = uniquePrefix('orbnoid');
    const bare = await makeApp(empty, 'orb-http-noid');
    const bh = await listen(bare);
    try {
      const ready = await http(bh, { url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks).toEqual({ vault: true, identity: false, draining: false, turns: true });
      expect(ready.json().reason).toBe('identity not seeded (seed-vault Job)');
      const id = await http(bh, { url: '/v1/identity', headers: auth('alice') });
      expect({ s: id.statusCode, c: id.json().code }).toEqual({ s: 503, c: 'ORB_ERR_IDENTITY_UNAVAILABLE' });
      await seedIdentity(redis, empty, '2.0');
      await bare.identity.refresh();
      expect((await http(bh, { url: '/readyz' })).statusCode).toBe(200);
      expect((await http(bh, { url: '/v1/identity', headers: auth('alice') })).json()).toMatchObject({
        version: '2.0',
        document: { name: 'CaleonGenesis' },
      });
    } finally {
      await bare.close();
      await deletePrefix(redis, empty);
    }
  });
});
