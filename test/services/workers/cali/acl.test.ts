/** @jest-environment ./test/support/tiny-models/onnx-node-environment.js */
/**
 * The bus under the vault's real ACL users (infra/vault-acl.ts): seed writes identity:*, the
 * gateway (orb) starts a turn, cores and CALI run as their own users — every command and key
 * the bus touches (Lua scripts included) must be allowed, or this turn never ends.
 */
import { join } from 'node:path';
import Redis from 'ioredis';
import { aclRules, VaultUser } from '../../../../infra/vault-acl';
import { createAcp, startTextTurn } from '../../../../services/acp';
import { loadFunctions, seed } from '../../../../services/seed/main';
import { caliRole } from '../../../../services/workers/cali/role';
import { coreRole } from '../../../../services/workers/core/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { RedisServerHandle, startRedisServer } from '../../../support/redis-server';
import { REPO, workerConfig } from '../../acp/helpers';

let server: RedisServerHandle;
const clients: Redis[] = [];
const runtimes: WorkerRuntime[] = [];
const prefix = 'acl:';

function as(user: VaultUser): Redis {
  const c = new Redis({ host: '127.0.0.1', port: server.port, username: user, password: `${user}-pw`, maxRetriesPerRequest: 2 });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startRedisServer();
  const admin = new Redis(server.url);
  for (const user of ['orb', 'core', 'cali', 'seed', 'functions'] as VaultUser[]) {
    await admin.call('ACL', 'SETUSER', user, 'on', `>${user}-pw`, ...aclRules(user, prefix).split(' '));
  }
  await admin.quit();
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.stop()));
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await server.stop({ removeDir: true });
});

test('a text turn completes with every component on its own ACL user', async () => {
  // The bootstrap step, as the seed Job's init container runs it: the FUNCTION library as its own user.
  await loadFunctions({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_USERNAME: 'functions', REDIS_PASSWORD: 'functions-pw' });
  await seed({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_USERNAME: 'seed', REDIS_PASSWORD: 'seed-pw', VAULT_KEY_PREFIX: prefix,
    IDENTITY_FILE: join(REPO, 'services', 'seed', 'identity.json') });
  for (let n = 0; n < 3; n++) {
    runtimes.push(new WorkerRuntime(coreRole, { redis: as('core'), keyPrefix: prefix, http: false, worker: workerConfig({ podName: `core4-${n}`, trimIntervalMs: 100 }),
      env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') } }));
  }
  runtimes.push(new WorkerRuntime(caliRole, { redis: as('cali'), keyPrefix: prefix, http: false, worker: workerConfig({ podName: 'cali-0', trimIntervalMs: 100 }), env: {} }));
  await Promise.all(runtimes.map((r) => r.start()));

  const gw = createAcp(as('orb'), { prefix });
  const t = await startTextTurn(gw.bus, gw.events, { session: 'acl-s', text: 'hello there', cores: 3, timeoutMs: 10_000 });
  const end = await gw.events.waitFor('acl-s', t.seq, (e) => e.type === 'turn.end', { timeoutMs: 20_000 });
  expect(end?.data).toEqual({ outcome: 'ok' });
  const reply = (await gw.events.read('acl-s', t.seq)).find((e) => e.type === 'reply');
  expect((reply?.data as { text: string }).text).toBe("Hello! I'm CaleonGenesis. How can I help?");
  // The reclaimer and the trimmer ran under the same users without errors.
  await Promise.all(runtimes.map((r) => r.consumer!.reclaim()));
  expect(await gw.bus.trim('cali')).toBeGreaterThanOrEqual(0);
  await gw.close();
}, 60_000);
