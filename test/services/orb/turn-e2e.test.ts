/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * Text turns end to end through the gateway: POST /v1/turns and the WebSocket on two replicas,
 * with the five real core workers (the committed ONNX models) and CALI running in-process on the
 * same Redis. Nothing is stubbed: the reply comes from CALI through the event stream.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { createAcp } from '../../../services/acp';
import { loadEnv } from '../../../services/config/env';
import { WORKER_ENV } from '../../../services/config/worker';
import { parseIdentity, writeIdentity } from '../../../services/seed/identity';
import { caliRole } from '../../../services/workers/cali/role';
import { coreRole } from '../../../services/workers/core/role';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, Client, http, listen, makeApp } from './support';

jest.setTimeout(120_000);
const REPO = join(__dirname, '..', '..', '..');
const prefix = uniquePrefix('orbe2e');
const clients: Redis[] = [];
const workers: WorkerRuntime[] = [];
let A: FastifyInstance;
let B: FastifyInstance;
let a: string;
let b: string;

const client = () => {
  const c = testRedis();
  clients.push(c);
  return c;
};
const workerConfig = (podName: string) => ({
  ...loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '200', LOG_LEVEL: 'silent', ACP_TRIM_INTERVAL_MS: '0' }),
  podName,
});

beforeAll(async () => {
  const admin = client();
  await writeIdentity(
    admin,
    createAcp(admin, { prefix }).keys,
    parseIdentity(readFileSync(join(REPO, 'services', 'seed', 'identity.json'), 'utf8')),
  );
  for (let n = 0; n < 5; n++) {
    workers.push(
      new WorkerRuntime(coreRole, {
        redis: client(),
        keyPrefix: prefix,
        http: false,
        worker: workerConfig(`core4-${n}`),
        env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
      }),
    );
  }
  // A long quorum grace so a slow fifth core on a loaded CI machine still makes it into the vote.
  workers.push(
    new WorkerRuntime(caliRole, {
      redis: client(),
      keyPrefix: prefix,
      http: false,
      worker: workerConfig('cali-0'),
      env: { CALI_QUORUM_GRACE_MS: '3000' },
    }),
  );
  await Promise.all(workers.map((w) => w.start()));
  const extra = { ORB_TURN_DEADLINE_MS: '20000' };
  A = await makeApp(prefix, 'orb-e2e-a', extra);
  B = await makeApp(prefix, 'orb-e2e-b', extra);
  a = await listen(A);
  b = await listen(B);
});

afterAll(async () => {
  await A?.close();
  await B?.close();
  await Promise.all(workers.map((w) => w.stop()));
  await deletePrefix(clients[0], prefix);
  await Promise.all(clients.map((c) => c.quit()));
});

test('POST /v1/turns returns the whole turn: transcript, five verdicts, the reply, turn.end', async () => {
  const res = await http(a, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { text: 'hello there' } });
  expect(res.statusCode).toBe(200);
  const body = res.json();
  expect(body).toMatchObject({
    outcome: 'ok',
    transcript: 'hello there',
    reply: { label: 'greeting', identity: { name: 'CaleonGenesis', version: '1.12' } },
  });
  expect(body.events.map((e: { type: string }) => e.type)).toEqual([
    'turn.start',
    'transcript',
    'verdict',
    'verdict',
    'verdict',
    'verdict',
    'verdict',
    'reply',
    'turn.end',
  ]);
  // The session the turn created is readable on the other replica.
  const onB = await http(b, { url: `/v1/sessions/${body.session}`, headers: auth('alice') });
  expect(onB.json().turns).toEqual([expect.objectContaining({ transcript: 'hello there', outcome: 'ok', reply: body.reply.text })]);
});

test('memory across replicas: a name given over HTTP on A is used in a WebSocket turn on B', async () => {
  const first = await http(a, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { text: 'my name is Ana' } });
  expect(first.statusCode).toBe(200);
  const sid = first.json().session as string;
  const ws = new Client(b, `/v1/session?session=${sid}&last_seq=${first.json().events.at(-1).seq}`, auth('alice'));
  try {
    await ws.next((m) => m.type === 'session.ready', 'ready');
    ws.send({ type: 'text', text: 'what is my name?' });
    const accepted = await ws.next((m) => m.type === 'turn.accepted', 'accepted');
    const end = await ws.next((m) => m.type === 'turn.end' && m.turn === accepted.turn, 'turn.end on the socket');
    const reply = ws.messages.find((m) => m.type === 'reply' && m.turn === accepted.turn) as { data: { text: string } } | undefined;
    expect(reply?.data.text).toContain('Ana');
    expect(end.data).toEqual({ outcome: 'ok' });
    // Every event of the session after the resume point arrived once, in order.
    const seqs = ws.seqs();
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => first.json().events.at(-1).seq + 1 + i));
  } finally {
    await ws.close();
  }
});
