import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { vaultKeys } from '../../../services/acp';
import { seed } from '../../../services/seed/main';
import { parseIdentity, readIdentity } from '../../../services/seed/identity';
import { deletePrefix, testRedis, testRedisUrl, uniquePrefix } from '../../support/vault';
import { exited, REPO, spawnTs } from '../acp/helpers';

const prefix = uniquePrefix('seed');
let redis: Redis;
let dir: string;

beforeAll(() => {
  redis = testRedis();
  dir = mkdtempSync(join(tmpdir(), 'seed-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('the seed loader writes identity:seed and identity:version from IDENTITY_FILE', async () => {
  const env = { REDIS_URL: testRedisUrl(), VAULT_KEY_PREFIX: prefix, IDENTITY_FILE: join(REPO, 'services', 'seed', 'identity.json') };
  expect(await seed(env)).toEqual({ name: 'CaleonGenesis', version: '1.12' });
  const keys = vaultKeys(prefix);
  expect(await redis.get(keys.identityVersion)).toBe('1.12');
  expect(await readIdentity(redis, keys)).toMatchObject({ name: 'CaleonGenesis', version: '1.12' });
  expect(await seed(env)).toEqual({ name: 'CaleonGenesis', version: '1.12' }); // idempotent re-run
});

test.each([
  ['{"version": "1.12"}', /'name' must be a non-empty string/],
  ['{"name": "X", "version": 1.12}', /'version' must be a version string/],
  ['[1]', /must be a JSON object/],
  ['{', /not JSON/],
])('a bad identity document %s is refused, naming the field', (raw, msg) => {
  expect(() => parseIdentity(raw, 'identity.json')).toThrow(msg);
});

test('the seed Job exits 2 with a clear message when the document is missing', async () => {
  const child = spawnTs(join(REPO, 'services', 'seed', 'main.ts'), [], {
    REDIS_URL: testRedisUrl(),
    VAULT_KEY_PREFIX: prefix,
    IDENTITY_FILE: join(dir, 'missing.json'),
  });
  expect(await exited(child)).toBe(2);
  expect(child.output()).toMatch(/seed failed: .*missing\.json/);
});

test('the seed Job writes the document and exits 0', async () => {
  const file = join(dir, 'identity.json');
  writeFileSync(file, JSON.stringify({ name: 'TestSeed', version: '2.0' }));
  const p2 = uniquePrefix('seed2');
  const child = spawnTs(join(REPO, 'services', 'seed', 'main.ts'), [], {
    REDIS_URL: testRedisUrl(),
    VAULT_KEY_PREFIX: p2,
    IDENTITY_FILE: file,
  });
  expect(await exited(child)).toBe(0);
  expect(child.output()).toMatch(/seeded identity TestSeed version 2\.0/);
  expect(await redis.get(`${p2}identity:version`)).toBe('2.0');
  await deletePrefix(redis, p2);
});
