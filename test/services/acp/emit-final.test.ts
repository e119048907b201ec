/**
 * Job.emitFinal: a job's last event and its commit in one FCALL (orb_append_commit), the cores'
 * path. The event lands once, the job is marked done and acknowledged with it (nothing pending),
 * the same job published again still yields one event (dedupe on the done record), a handler that
 * fails after it leaves the job done instead of retrying it, and `turn.end` falls back to emit +
 * the runtime's commit.
 */
import Redis from 'ioredis';
import { ACP_GROUP, createAcp, createEnvelope, JobConsumer, JobOutcome, textPart, type Job } from '../../../services/acp';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { waitUntil } from './helpers';

const prefix = uniquePrefix('final');
let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

async function consume(queue: string, handle: (job: Job) => Promise<void>, publish: number, idempotent = true) {
  const acp = createAcp(redis, { prefix });
  const outcomes: JobOutcome[] = [];
  const errors: string[] = [];
  const consumer = new JobConsumer(
    acp.bus,
    acp.events,
    { queue, consumer: `${queue}-0`, blockMs: 200, trimIntervalMs: 0, reclaimIdleMs: 300, reclaimIntervalMs: 100, idempotent },
    async (jobs) =>
      Promise.all(
        jobs.map((job) =>
          handle(job).then(
            () => undefined,
            (err: unknown) => err,
          ),
        ),
      ),
    { onOutcome: (o) => outcomes.push(o), onError: (err) => errors.push(String((err as Error).message ?? err)) },
  );
  await consumer.start();
  const session = `s-${queue}`;
  const env = createEnvelope({ id: `${queue}-job`, kind: 'test.echo', session, turn: 't1', parts: [textPart('x')] });
  try {
    for (let i = 0; i < publish; i++) {
      await acp.bus.publish(queue, env);
      await waitUntil(`outcome ${i + 1}`, () => outcomes.length === i + 1);
    }
    // Give a wrongly pending job time to be reclaimed and run again.
    await new Promise((r) => setTimeout(r, 800));
    const events = (await acp.events.read(session, 0)).filter((e) => e.turn === 't1');
    const pending = (await redis.xpending(acp.keys.jobs(queue), ACP_GROUP)) as [number, ...unknown[]];
    const done = await redis.hgetall(acp.keys.done(env.id));
    return { outcomes, errors, events, pending: Number(pending[0]), done };
  } finally {
    await consumer.stop(1000);
    await acp.close();
  }
}

test('emitFinal: the event lands once, and the job is done and acknowledged in the same step', async () => {
  const r = await consume('final-ok', async (job) => void (await job.emitFinal('verdict', { label: 'x' })), 1);
  expect(r.outcomes).toEqual(['ok']);
  expect(r.events.map((e) => [e.type, e.data])).toEqual([['verdict', { label: 'x' }]]);
  expect(r.pending).toBe(0);
  expect(r.done).toMatchObject({ done: 'ok', e0: String(r.events[0].seq) });
});

test('emitFinal: the same job published again runs again (idempotent) and still makes one event', async () => {
  const r = await consume('final-twice', async (job) => void (await job.emitFinal('verdict', { label: 'x' })), 2);
  expect(r.outcomes).toEqual(['ok', 'ok']);
  expect(r.events).toHaveLength(1);
  expect(r.pending).toBe(0);
});

test('a handler that fails after emitFinal leaves the job done: not retried, one event, the error reported', async () => {
  let runs = 0;
  const r = await consume(
    'final-throws',
    async (job) => {
      runs++;
      await job.emitFinal('verdict', { label: 'x' });
      throw new Error('after the final emit');
    },
    1,
  );
  expect(runs).toBe(1);
  expect(r.outcomes).toEqual(['ok']);
  expect(r.errors).toContain('after the final emit');
  expect(r.events).toHaveLength(1);
  expect(r.pending).toBe(0);
});

test('a handler that fails before its final emit is retried, and the retry emits and commits', async () => {
  let runs = 0;
  const r = await consume(
    'final-retry',
    async (job) => {
      if (++runs === 1) throw new Error('first run fails');
      await job.emitFinal('verdict', { label: 'x' });
    },
    1,
  );
  await waitUntil('the retry', () => runs === 2);
  expect(r.events).toHaveLength(1);
  expect(r.pending).toBe(0);
});

test("emitFinal('turn.end') ends the turn through orb_turn_end and the runtime commits after it", async () => {
  const r = await consume('final-end', async (job) => void (await job.emitFinal('turn.end', { outcome: 'ok' })), 1, false);
  expect(r.outcomes).toEqual(['ok']);
  expect(r.events.map((e) => e.type)).toEqual(['turn.end']);
  expect(r.pending).toBe(0);
  expect(r.done.done).toBe('ok');
});
