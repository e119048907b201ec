/**
 * Two gateway replicas on two ports sharing one Redis: whatever one knows, the other serves —
 * sessions, resume of a WebSocket after its replica closes mid-stream, rate limits, socket caps.
 */
import type { FastifyInstance } from 'fastify';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { TurnEventStream, vaultKeys } from '../../../services/acp';
import { auth, Client, http, KEYS, listen, makeApp, seedIdentity, waitFor } from './support';

const prefix = uniquePrefix('orb2');
const redis = testRedis();
const events = new TurnEventStream(redis, vaultKeys(prefix));
let A: FastifyInstance;
let B: FastifyInstance;
let a: string;
let b: string;
const clients: Client[] = [];
const track = (c: Client) => {
  clients.push(c);
  return c;
};

beforeAll(async () => {
  await seedIdentity(redis, prefix);
  const extra = { ORB_MAX_SOCKETS_PER_KEY: '3' };
  A = await makeApp(prefix, 'orb-a', extra);
  B = await makeApp(prefix, 'orb-b', extra);
  a = await listen(A);
  b = await listen(B);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await A.close();
  await B.close();
  await events.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

test('a session created on A is read on B', async () => {
  const s = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json();
  await events.append(s.id, { type: 'transcript', turn: 't1', data: { text: 'hello', final: true } });
  const onB = await http(b, { url: `/v1/sessions/${s.id}`, headers: auth('alice') });
  expect(onB.statusCode).toBe(200);
  expect(onB.json()).toMatchObject({ id: s.id, last_seq: 1, turns: [{ turn: 't1', transcript: 'hello' }] });
  const bobOnB = await http(b, { url: `/v1/sessions/${s.id}`, headers: auth('bob') });
  expect(bobOnB.statusCode).toBe(404);
});

test('heartbeats: both replicas listed with their status', async () => {
  const list = await waitFor(async () => {
    const r = (await http(b, { url: '/v1/replicas', headers: auth('alice') })).json().replicas as { pod: string }[];
    return r.length === 2 ? r : null;
  }, 'two replicas');
  expect(list).toEqual([
    expect.objectContaining({ pod: 'orb-a', identity_version: '1.12', draining: false, version: expect.any(String) }),
    expect.objectContaining({ pod: 'orb-b', identity_version: '1.12', draining: false }),
  ]);
  expect(await redis.pttl(`${prefix}orb:replica:orb-a`)).toBeGreaterThan(0);
});

test('a WebSocket on A, A closed mid-stream: the client resumes on B with no gap and no duplicate', async () => {
  const C = await makeApp(prefix, 'orb-c');
  const c = await listen(C);
  const s = (await http(c, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json();
  const TOTAL = 300;
  // A worker stand-in keeps appending turn events across the switch: the first 100 before, the
  // rest while replica C shuts down and the client moves to B.
  let produced = 0;
  let switching!: () => void;
  const switchStarted = new Promise<void>((r) => {
    switching = r;
  });
  const producer = (async () => {
    while (produced < TOTAL) {
      if (produced === 100) await switchStarted;
      await events.append(s.id, { type: 'audio', turn: 't1', data: { index: produced, final: produced === TOTAL - 1 } });
      produced++;
      await new Promise((r) => setImmediate(r));
    }
  })();

  const first = track(new Client(c, `/v1/session?session=${s.id}`, auth('alice')));
  await first.opened;
  await waitFor(() => first.seqs().length >= 50, '50 events on the first replica');
  switching();
  await C.close(); // the replica goes away mid-stream
  await first.closed;
  expect(first.closeCode).toBe(1012);
  const hint = JSON.parse(first.closeReason);
  expect(hint).toMatchObject({ reconnect: true, session: s.id });
  const got1 = first.seqs();
  expect(hint.last_seq).toBe(got1[got1.length - 1]);
  expect(produced).toBeLessThan(TOTAL);

  const second = track(new Client(b, `/v1/session?session=${s.id}&last_seq=${hint.last_seq}`, auth('alice')));
  await second.opened;
  await producer;
  await waitFor(() => second.seqs().includes(TOTAL), `seq ${TOTAL} on B`);
  const ready = second.messages[0];
  expect(ready).toMatchObject({ type: 'session.ready', session: s.id, resumed: true, after_seq: hint.last_seq, replica: 'orb-b' });
  const all = [...got1, ...second.seqs()];
  expect(all).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
});

test('audio frames are in the vault as they arrive, and B continues the utterance A had open', async () => {
  const D = await makeApp(prefix, 'orb-d');
  const d = await listen(D);
  const onD = track(new Client(d, '/v1/session', auth('alice')));
  const ready = await onD.next((m) => m.type === 'session.ready', 'session.ready');
  const sid = ready.session as string;
  const frame = Buffer.alloc(3200, 1);
  for (let i = 0; i < 5; i++) onD.ws.send(frame);
  const turn = await waitFor(() => redis.hget(`${prefix}session:${sid}`, 'open_utterance'), 'open utterance');
  await waitFor(async () => (await redis.strlen(`${prefix}turn:${sid}:${turn}:audio`)) === 5 * 3200, 'five frames in the vault');
  await D.close();
  await onD.closed;

  const onB = track(new Client(b, `/v1/session?session=${sid}`, auth('alice')));
  const r2 = await onB.next((m) => m.type === 'session.ready', 'session.ready on B');
  expect(r2.open_utterance).toEqual({ turn, bytes: 16_000 });
  onB.ws.send(frame);
  onB.send({ type: 'input_audio.commit' });
  const committed = await onB.next((m) => m.type === 'input_audio.committed', 'committed');
  expect(committed).toEqual({ type: 'input_audio.committed', turn, bytes: 19_200, by: 'client' });
  const start = await onB.next((m) => m.type === 'turn.start', 'turn.start event');
  expect(start).toMatchObject({ turn, data: { source: 'audio', audio_bytes: 19_200 } });
  // turn.start is appended just before the job is published: wait for the job, do not race it.
  await waitFor(
    async () =>
      ((await redis.xrange(`${prefix}acp:jobs:whisperx`, '-', '+')) as [string, string[]][]).some(
        ([, f]) => JSON.parse(f[1]).turn === turn,
      ),
    'the asr.transcribe job',
  );
});

test('unauthenticated and cross-key sockets are refused before the upgrade', async () => {
  const s = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json();
  const anon = track(new Client(a, `/v1/session?session=${s.id}`));
  await expect(anon.opened).rejects.toThrow();
  await anon.closed;
  expect(anon.refusedStatus).toBe(401);
  expect(JSON.parse(anon.refusedBody).code).toBe('ORB_ERR_UNAUTHORIZED');

  const bob = track(new Client(b, `/v1/session?session=${s.id}`, auth('bob')));
  await expect(bob.opened).rejects.toThrow();
  await bob.closed;
  expect(bob.refusedStatus).toBe(404);
  expect(JSON.parse(bob.refusedBody).code).toBe('ORB_ERR_UNKNOWN_SESSION');

  const viaQuery = track(new Client(a, `/v1/session?session=${s.id}&token=${KEYS.alice}`));
  await viaQuery.opened;
});

test('bad resume seq is a 400 before the upgrade', async () => {
  const s = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json();
  for (const q of ['last_seq=5', 'last_seq=-3', 'last_seq=x']) {
    const c = track(new Client(a, `/v1/session?session=${s.id}&${q}`, auth('alice')));
    await expect(c.opened).rejects.toThrow();
    await c.closed;
    expect({ q, status: c.refusedStatus, code: JSON.parse(c.refusedBody).code }).toEqual({ q, status: 400, code: 'ORB_ERR_BAD_SEQ' });
  }
});

test('bad messages get an error event and the socket and process stay up; oversized frames close 1009', async () => {
  const c = track(new Client(a, '/v1/session', auth('alice')));
  await c.next((m) => m.type === 'session.ready', 'ready');
  const sendAndExpect = async (send: () => void, code: string) => {
    const from = c.messages.length;
    send();
    const err = await c.next((m) => m.type === 'error', code, from);
    expect(err.code).toBe(code);
  };
  await sendAndExpect(() => c.ws.send('{"type": "text", '), 'ORB_ERR_MALFORMED_JSON');
  await sendAndExpect(() => c.send({ type: 'dance' }), 'ORB_ERR_BAD_EVENT');
  await sendAndExpect(() => c.send({ type: 'text', text: '' }), 'ORB_ERR_BAD_EVENT');
  await sendAndExpect(
    () => c.send({ type: 'input_audio.format', encoding: 'pcm16le', sample_rate: 44100, channels: 1 }),
    'ORB_ERR_AUDIO_FORMAT',
  );
  await sendAndExpect(() => c.ws.send(Buffer.alloc(321)), 'ORB_ERR_AUDIO_FORMAT');
  await sendAndExpect(() => c.send({ type: 'input_audio.commit' }), 'ORB_ERR_BAD_EVENT');
  const from = c.messages.length;
  c.send({ type: 'ping', id: 7 });
  expect(await c.next((m) => m.type === 'pong', 'pong', from)).toEqual({ type: 'pong', id: 7 });

  c.ws.send(Buffer.alloc(64 * 1024 + 2));
  await c.closed;
  expect(c.closeCode).toBe(1009);
  expect((await http(a, { url: '/livez' })).statusCode).toBe(200);
});

test('sockets per key are capped across replicas', async () => {
  const held = [
    track(new Client(a, '/v1/session', auth('carol'))),
    track(new Client(b, '/v1/session', auth('carol'))),
    track(new Client(a, '/v1/session', auth('carol'))),
  ];
  await Promise.all(held.map((c) => c.opened));
  const fourth = track(new Client(b, '/v1/session', auth('carol')));
  await expect(fourth.opened).rejects.toThrow();
  await fourth.closed;
  expect(fourth.refusedStatus).toBe(429);
  expect(JSON.parse(fourth.refusedBody).code).toBe('ORB_ERR_TOO_MANY_SOCKETS');
  await held[0].close();
  // The slot is free again once the server has seen the close.
  await waitFor(async () => {
    const c = new Client(b, '/v1/session', auth('carol'));
    try {
      await c.opened;
      track(c);
      return true;
    } catch {
      await c.closed;
      return false;
    }
  }, 'a free slot after a close');
});

test('rate limit is shared: requests on A and B draw from one budget', async () => {
  const rp = uniquePrefix('orbrl');
  await seedIdentity(redis, rp);
  const extra = { ORB_RATE_LIMIT_MAX: '6', ORB_RATE_LIMIT_WINDOW_MS: '600000' };
  const RA = await makeApp(rp, 'orb-rl-a', extra);
  const RB = await makeApp(rp, 'orb-rl-b', extra);
  try {
    const ra = await listen(RA);
    const rb = await listen(RB);
    const statuses: number[] = [];
    for (const host of [ra, rb, ra, rb, ra, rb])
      statuses.push((await http(host, { url: '/v1/identity', headers: auth('alice') })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    const limited = await http(ra, { url: '/v1/identity', headers: auth('alice') });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('ORB_ERR_TOO_MANY_REQUESTS');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await http(rb, { url: '/v1/identity', headers: auth('alice') })).statusCode).toBe(429);
    // Another key has its own budget; probes are never limited.
    expect((await http(rb, { url: '/v1/identity', headers: auth('bob') })).statusCode).toBe(200);
    expect((await http(ra, { url: '/livez' })).statusCode).toBe(200);
    const keys = await redis.keys(`${rp}orb:ratelimit:*`);
    expect(keys).toEqual(expect.arrayContaining([`${rp}orb:ratelimit:alice`]));
  } finally {
    await RA.close();
    await RB.close();
    await deletePrefix(redis, rp);
  }
});

test('two sockets on one session on one replica (one shared tail) each get every event once', async () => {
  const s = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json();
  await events.append(s.id, { type: 'transcript', turn: 't0', data: { text: 'before' } });
  const early = track(new Client(a, `/v1/session?session=${s.id}`, auth('alice')));
  await early.next((m) => m.seq === 1, 'history on the first socket');
  const writes = (async () => {
    for (let i = 0; i < 100; i++) await events.append(s.id, { type: 'audio', turn: 't1', data: { index: i } });
  })();
  // The second socket joins while events are flowing, resuming from seq 1.
  const late = track(new Client(a, `/v1/session?session=${s.id}&last_seq=1`, auth('alice')));
  await writes;
  await waitFor(() => early.seqs().includes(101) && late.seqs().includes(101), 'seq 101 on both sockets');
  expect(early.seqs()).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
  expect(late.seqs()).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
});
