/** The gateway fans a turn out to ORB_CORES cores (the core4 StatefulSet size), not a fixed five. */
import type { FastifyInstance } from 'fastify';
import { vaultKeys } from '../../../services/acp';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, http, listen, makeApp, seedIdentity } from './support';

const prefix = uniquePrefix('orbcores');
const redis = testRedis();
const keys = vaultKeys(prefix);
let app: FastifyInstance;
let host: string;

beforeAll(async () => {
  await seedIdentity(redis, prefix);
  app = await makeApp(prefix, 'orb-cores-0', { ORB_CORES: '3' });
  host = await listen(app);
});

afterAll(async () => {
  await app.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('a text turn with ORB_CORES=3 queues exactly three core jobs and announces three cores', async () => {
  // No workers run here: the turn times out (504), but what it queued is in the vault.
  const res = await http(host, {
    method: 'POST',
    url: '/v1/turns',
    headers: { ...auth('alice'), 'content-type': 'application/json' },
    payload: { text: 'hello there' },
  });
  expect(res.statusCode).toBe(504);
  expect(await Promise.all([0, 1, 2, 3].map((n) => redis.xlen(keys.jobs(`core:${n}`))))).toEqual([1, 1, 1, 0]);
  const [sid] = (await redis.keys(`${prefix}turn:*:events`)).map((k) => k.slice(`${prefix}turn:`.length, -':events'.length));
  const start = (await redis.xrange(keys.turnEvents(sid), '-', '+')).find(([, f]) => f[f.indexOf('type') + 1] === 'turn.start');
  const data = JSON.parse(start![1][start![1].indexOf('data') + 1]);
  expect(data.cores).toBe(3);
});
