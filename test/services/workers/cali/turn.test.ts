/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * A text turn end to end on a real Redis: five core workers (the shipped ONNX models) and CALI,
 * driven through the ACP API the gateway uses. Quorum with cores stopped, the +1 tie-break,
 * session memory across two "gateway" clients, identity from the seed vault.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Acp, createAcp, createEnvelope, jsonPart, startTextTurn, TurnEvent, CaliTurnSpec } from '../../../../services/acp';
import { parseIdentity, writeIdentity } from '../../../../services/seed/identity';
import { caliRole } from '../../../../services/workers/cali/role';
import { coreRole } from '../../../../services/workers/core/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../../support/vault';
import { REPO, workerConfig } from '../../acp/helpers';

const prefix = uniquePrefix('turn');
const clients: Redis[] = [];
const cores: WorkerRuntime[] = [];
let cali: WorkerRuntime;
let gatewayA: Acp;
let gatewayB: Acp;

function client(): Redis {
  const c = testRedis();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  const admin = client();
  await writeIdentity(
    admin,
    createAcp(admin, { prefix }).keys,
    parseIdentity(readFileSync(join(REPO, 'services', 'seed', 'identity.json'), 'utf8')),
  );
  for (let n = 0; n < 5; n++) {
    cores.push(
      new WorkerRuntime(coreRole, {
        redis: client(),
        keyPrefix: prefix,
        http: false,
        worker: workerConfig({ podName: `core4-${n}` }),
        env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
      }),
    );
  }
  cali = new WorkerRuntime(caliRole, {
    redis: client(),
    keyPrefix: prefix,
    http: false,
    worker: workerConfig({ podName: 'cali-0' }),
    // A long grace so a slow fifth core on a loaded CI machine still makes it into the vote.
    env: { CALI_QUORUM_GRACE_MS: '3000' },
  });
  await Promise.all([...cores, cali].map((r) => r.start()));
  gatewayA = createAcp(client(), { prefix });
  gatewayB = createAcp(client(), { prefix });
}, 60_000);

afterAll(async () => {
  await Promise.all([...cores, cali].map((r) => r.stop()));
  await gatewayA.close();
  await gatewayB.close();
  await deletePrefix(clients[0], prefix);
  await Promise.all(clients.map((c) => c.quit()));
});

/** Runs a text turn through one gateway client and returns the turn's events up to turn.end. */
async function turn(gw: Acp, session: string, text: string, timeoutMs = 8000): Promise<{ events: TurnEvent[]; deadlineMs: number }> {
  const t = await startTextTurn(gw.bus, gw.events, { session, text, timeoutMs });
  const end = await gw.events.waitFor(session, t.seq - 1, (e) => e.turn === t.turn && e.type === 'turn.end', {
    timeoutMs: timeoutMs + 15_000,
  });
  expect(end).toBeDefined();
  const events = (await gw.events.read(session, t.seq - 1)).filter((e) => e.turn === t.turn && e.seq <= end!.seq);
  return { events, deadlineMs: t.deadlineMs };
}

const of = (events: TurnEvent[], type: string) => events.filter((e) => e.type === type);
const replyOf = (events: TurnEvent[]) =>
  of(events, 'reply')[0]?.data as { text: string; label: string; verdicts: unknown[]; decided_by: string; identity: { name: string } };

test('all five cores answer; CALI replies as the seeded identity and ends the turn', async () => {
  const { events } = await turn(gatewayA, 's-hello', 'hello there');
  expect(events.map((e) => e.type)).toEqual([
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
  expect(
    of(events, 'verdict')
      .map((e) => (e.data as { core: number }).core)
      .sort(),
  ).toEqual([0, 1, 2, 3, 4]);
  const reply = replyOf(events);
  expect(reply).toMatchObject({ label: 'greeting', identity: { name: 'CaleonGenesis', version: '1.12' } });
  expect(reply.text).toBe("Hello! I'm CaleonGenesis. How can I help?");
  expect(await cali.metrics.getSingleMetricAsString('cali_consensus_ratio')).toMatch(/cali_consensus_ratio_count 1/);
});

test('memory written in turn 1 (gateway A) is used in turn 3 (gateway B)', async () => {
  const s = 's-memory';
  const t1 = await turn(gatewayA, s, 'my name is Ana');
  expect(replyOf(t1.events).text).toBe("Nice to meet you, Ana. I'll remember your name.");
  const t2 = await turn(gatewayB, s, 'turn off the kitchen lights');
  expect(replyOf(t2.events).label).toBe('command');
  const t3 = await turn(gatewayB, s, 'what is my name?');
  expect(replyOf(t3.events).text).toBe('Your name is Ana.');
  const t4 = await turn(gatewayA, s, 'goodbye');
  expect(replyOf(t4.events).text).toBe('Goodbye, Ana! Talk to you soon.');
  // Gateway B resumes the session's stream from any seq: it sees A's first turn too.
  const seen = await gatewayB.events.read(s, 0);
  expect(of(seen, 'reply')).toHaveLength(4);
  expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1));
});

test('a tie between two labels is broken by the fifth core', async () => {
  const session = 's-tie';
  const start = await gatewayA.events.append(session, { type: 'turn.start', turn: 'tie1' });
  const spec: CaliTurnSpec = { text: 'hmm, hello?', cores: 5, speak: false, vote_deadline_ms: Date.now() + 20_000 };
  await gatewayA.bus.publish(
    'cali',
    createEnvelope({
      id: 'tie1.cali',
      kind: 'cali.turn',
      session,
      turn: 'tie1',
      seq: start.seq,
      timeoutMs: 25_000,
      parts: [jsonPart(spec)],
    }),
  );
  // The test plays the cores: greeting 0.9 + 0.7 = 1.6 against smalltalk 0.8 + 0.8 (core 4 among them).
  const votes = [
    [0, 'greeting', 0.9],
    [1, 'greeting', 0.7],
    [2, 'smalltalk', 0.8],
    [3, 'unknown', 0.5],
    [4, 'smalltalk', 0.8],
  ] as const;
  for (const [core, label, confidence] of votes)
    await gatewayB.events.append(session, { type: 'verdict', turn: 'tie1', data: { core, label, confidence } });
  const reply = await gatewayA.events.waitFor(session, start.seq, (e) => e.type === 'reply', { timeoutMs: 20_000 });
  expect(reply?.data).toMatchObject({ label: 'smalltalk', tie: true, decided_by: 'tiebreak-core', consensus: 0.4 });
});

test('quorum: one and two cores stopped still answer; three stopped reports no quorum by the deadline, from their heartbeats', async () => {
  await cores[4].stop();
  const one = await turn(gatewayA, 's-q1', 'good morning');
  expect(replyOf(one.events).verdicts).toHaveLength(4);
  expect(replyOf(one.events).label).toBe('greeting');

  await cores[1].stop();
  const two = await turn(gatewayB, 's-q2', 'set a timer for ten minutes');
  expect(replyOf(two.events).verdicts).toHaveLength(3);
  expect(replyOf(two.events).label).toBe('command');

  await cores[2].stop();
  const three = await turn(gatewayA, 's-q3', 'good night', 4000);
  expect(of(three.events, 'reply')).toHaveLength(0);
  const nq = of(three.events, 'turn.no_quorum')[0];
  // The stopped cores retired their heartbeats: CALI need not wait for the two live ones' verdicts.
  expect(nq.data).toMatchObject({ quorum: 3, cores: 5, reason: 'cores_down' });
  expect((nq.data as { received: number }).received).toBeLessThanOrEqual(2);
  expect(nq.ts).toBeLessThanOrEqual(three.deadlineMs);
  expect(of(three.events, 'turn.end')[0].data).toEqual({ outcome: 'no_quorum' });
  expect(await cali.metrics.getSingleMetricAsString('cali_turns_total')).toMatch(
    /cali_turns_total\{outcome="no_quorum",strategy="none"\} 1/,
  );
}, 60_000);
