/** @jest-environment ./test/support/onnx-node-environment.js */
/** The core role on the bus: micro-batches through one ONNX run, bad jobs dead-lettered at once. */
import { join } from 'node:path';
import Redis from 'ioredis';
import { createAcp, createEnvelope, jsonPart, textPart } from '../../../../services/acp';
import { coreRole } from '../../../../services/workers/core/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../../support/vault';
import { REPO, waitUntil, workerConfig } from '../../acp/helpers';

const prefix = uniquePrefix('core');
let redis: Redis;
let worker: Redis;
let rt: WorkerRuntime;

beforeAll(() => {
  redis = testRedis();
  worker = testRedis();
});
afterAll(async () => {
  await rt?.stop();
  await deletePrefix(redis, prefix);
  await redis.quit();
  await worker.quit();
});

test('a backlog is classified in micro-batches; a job without text goes to the DLQ at once', async () => {
  const acp = createAcp(redis, { prefix });
  const texts = ['hello', 'goodbye', 'turn on the lights', 'my name is Ana'];
  for (let i = 0; i < 32; i++) {
    await acp.bus.publish(
      'core:3',
      createEnvelope({
        id: `c${i}`,
        kind: 'core.classify',
        session: 's-core',
        turn: `t${i}`,
        timeoutMs: 60_000,
        parts: [textPart(texts[i % 4])],
      }),
    );
  }
  await acp.bus.publish(
    'core:3',
    createEnvelope({
      id: 'bad',
      kind: 'core.classify',
      session: 's-core',
      turn: 'tb',
      timeoutMs: 60_000,
      parts: [jsonPart({ text: 'hi' })],
    }),
  );
  rt = new WorkerRuntime(coreRole, {
    redis: worker,
    keyPrefix: prefix,
    http: false,
    worker: workerConfig({ podName: 'core4-3' }),
    env: { CORE_MODELS_DIR: join(REPO, 'models', 'core'), CORE_BATCH_SIZE: '16' },
  });
  await rt.start();
  const verdictsNow = async () => (await acp.events.read('s-core', 0)).filter((e) => e.type === 'verdict');
  await waitUntil('32 verdicts', async () => (await verdictsNow()).length === 32);
  const verdicts = await verdictsNow();
  for (const ev of verdicts) {
    const i = Number(ev.turn.slice(1));
    expect(ev.type).toBe('verdict');
    expect(ev.data).toMatchObject({ core: 3, label: ['greeting', 'farewell', 'command', 'memory_request'][i % 4] });
  }
  await waitUntil('the bad job dead-lettered', async () => (await acp.bus.dlqSize('core:3')) === 1);
  expect((await acp.bus.deadLetters('core:3'))[0]).toMatchObject({ jobId: 'bad', code: 'ACP_ERR_REJECTED', deliveries: 1 });
  const errors = (await acp.events.read('s-core', 0)).filter((e) => e.type === 'turn.error');
  expect(errors.map((e) => [e.turn, (e.data as { code: string }).code])).toEqual([['tb', 'ACP_ERR_REJECTED']]);
  // One core's loss is not the turn's: the quorum of the others may still answer, so no turn.end.
  expect((await acp.events.read('s-core', 0)).filter((e) => e.type === 'turn.end')).toEqual([]);
  const batches = (await rt.m.batchSize.get()).values;
  const sum = batches.find((v) => v.metricName === 'acp_batch_size_sum')!.value;
  const count = batches.find((v) => v.metricName === 'acp_batch_size_count')!.value;
  expect(sum).toBe(33); // the bad job reached the handler too, which rejected it
  expect(count).toBeLessThan(32); // several jobs per ONNX run
});
