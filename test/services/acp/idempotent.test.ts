/**
 * The idempotent-handler path of the consumer (JobConsumerOptions.idempotent, the cores' setting):
 * a first delivery skips the done-record read, so a job published again under an id already done
 * runs the handler once more, and the per-job emit dedupe must still keep its event to one. A
 * handler without the flag still skips such a job before running (outcome `duplicate`), and a
 * redelivery of an idempotent job still honours the delivery limit (dead letter).
 */
import Redis from 'ioredis';
import { AcpEnvelope, createAcp, createEnvelope, JobConsumer, JobOutcome, textPart } from '../../../services/acp';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { waitUntil } from './helpers';

const prefix = uniquePrefix('idem');
let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

async function run(idempotent: boolean, queue: string) {
  const acp = createAcp(redis, { prefix });
  const outcomes: JobOutcome[] = [];
  let runs = 0;
  const consumer = new JobConsumer(
    acp.bus,
    acp.events,
    { queue, consumer: `${queue}-0`, blockMs: 200, trimIntervalMs: 0, idempotent },
    async (jobs) =>
      Promise.all(
        jobs.map(async (job) => {
          runs++;
          await job.emit('echo', { text: 'once' });
          return undefined;
        }),
      ),
    { onOutcome: (o) => outcomes.push(o) },
  );
  await consumer.start();
  const session = `s-${queue}`;
  const env: AcpEnvelope = createEnvelope({ id: `${queue}-job`, kind: 'test.echo', session, turn: 't1', parts: [textPart('x')] });
  try {
    await acp.bus.publish(queue, env);
    await waitUntil('first outcome', () => outcomes.length === 1);
    // The same job id again, as a fresh stream entry (a first delivery, not a redelivery).
    await acp.bus.publish(queue, env);
    await waitUntil('second outcome', () => outcomes.length === 2);
    const events = (await acp.events.read(session, 0)).filter((e) => e.type === 'echo');
    return { outcomes, runs, events };
  } finally {
    await consumer.stop(1000);
    await acp.close();
  }
}

test('idempotent handler: a job done before runs again on a first delivery, and its event still lands once', async () => {
  const r = await run(true, 'idem-on');
  expect(r.runs).toBe(2);
  expect(r.outcomes).toEqual(['ok', 'ok']);
  expect(r.events).toHaveLength(1);
});

test('handler without the flag: the done record is read first, the second copy is a duplicate and never runs', async () => {
  const r = await run(false, 'idem-off');
  expect(r.runs).toBe(1);
  expect(r.outcomes).toEqual(['ok', 'duplicate']);
  expect(r.events).toHaveLength(1);
});

test('idempotent handler: redeliveries still read the done record and stop at the delivery limit', async () => {
  const acp = createAcp(redis, { prefix });
  const queue = 'idem-poison';
  const outcomes: JobOutcome[] = [];
  let runs = 0;
  const consumer = new JobConsumer(
    acp.bus,
    acp.events,
    {
      queue,
      consumer: `${queue}-0`,
      blockMs: 200,
      trimIntervalMs: 0,
      idempotent: true,
      reclaimIdleMs: 100,
      reclaimIntervalMs: 50,
      maxDeliveries: 2,
    },
    async (jobs) =>
      jobs.map(() => {
        runs++;
        return new Error('always fails');
      }),
    { onOutcome: (o) => outcomes.push(o) },
  );
  await consumer.start();
  try {
    await acp.bus.publish(
      queue,
      createEnvelope({ id: 'poison-job', kind: 'test.echo', session: 's-poison', turn: 't1', parts: [textPart('x')] }),
    );
    await waitUntil('dead letter', () => outcomes.includes('dead_letter'));
    expect(runs).toBe(2);
    expect(await acp.bus.dlqSize(queue)).toBe(1);
    const [dl] = await acp.bus.deadLetters(queue);
    expect(dl.code).toBe('ACP_ERR_DELIVERIES');
    expect(dl.error).toContain('always fails');
  } finally {
    await consumer.stop(1000);
    await acp.close();
  }
});
