/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * Text turns end to end through the gateway: POST /v1/turns and the WebSocket on two replicas,
 * with the five real core workers (the committed ONNX models) and CALI running in-process on the
 * same Redis. Nothing is stubbed: the reply comes from CALI through the event stream.
 */
import type Redis from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, Client, http, listen, makeApp } from './support';
import { writeShippedIdentity, verdictWorkers } from '../../support/verdict-workers';

jest.setTimeout(120_000);
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

beforeAll(async () => {
  await writeShippedIdentity(client(), prefix);
  workers.push(...verdictWorkers(client, prefix, 200));
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
