/**
 * Backup and restore end to end on the HA vault's own processes (test/support/sentinel-set.ts:
 * three redis-server + three Sentinels on loopback, started by the rendered scripts, with the
 * rendered ACL). Known data is written as the services write it (FUNCTION library, FCALL, each
 * service's own user), the CronJob's BACKUP_SCRIPT takes the snapshot from the primary the
 * Sentinels name, the upload step sends it to s3rver and the verified download brings it back.
 * More is written after the snapshot, then the whole set goes down as `kubectl scale --replicas=0`
 * takes it (reverse order, preStop, SIGTERM; the pods' memory-backed run dirs are gone, the data
 * dirs stay like PVCs), `scripts/vault-restore.sh --local` restores into vault-0's data dir, and
 * the pods start again in order. Every node must then hold exactly the snapshot (the post-snapshot
 * writes gone from the replicas' own AOFs too), the FUNCTION library and every ACL user. A second
 * round restores into a fresh primary (vault-0's data dir empty, as a new PVC).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { BACKUP_SCRIPT, VAULT_HA_USERS, VAULT_USERS } from '../../infra';
import { connectVault } from '../../services/acp/vault';
import { loadOrbFunctions, ORB_LIBRARY_VERSION } from '../../services/acp/functions';
import { loadEnv } from '../../services/config/env';
import { VAULT_ENV } from '../../services/config/vault';
import { BACKUP_UPLOAD_ENV } from '../../services/config/backup';
import { downloadSnapshot, newestSnapshot, uploadSnapshot } from '../../services/vault-backup/upload';
import { prepareSentinelSet, until, type SentinelSet } from '../support/sentinel-set';

jest.setTimeout(180_000);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');
const ROOT = join(__dirname, '..', '..');

const sid = `restore-${process.pid}`;
const K = {
  session: `session:${sid}`,
  lateSession: `session:${sid}-late`,
  seq: `turn:${sid}:seq`,
  events: `turn:${sid}:events`,
  audio: `turn:${sid}:t1:audio`,
  memory: `memory:${sid}`,
  jobs: 'acp:jobs:cali',
};
const AUDIO = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256));

let set: SentinelSet;
let s3: { run(): Promise<{ port: number }>; close(): Promise<void> };
let snapshotName = '';
let keysAtBackup = 0;
const vaults: Redis[] = [];

const sentinels = () => set.hosts.map((h) => `${h}:${set.sentinelPort}`).join(',');
const vaultAs = (user: string) => {
  const v = connectVault(
    loadEnv(VAULT_ENV, {
      REDIS_SENTINELS: sentinels(),
      REDIS_SENTINEL_MASTER: 'vault',
      REDIS_USERNAME: user,
      REDIS_PASSWORD: set.passwords[user],
    }),
    { connectionName: `restore-${user}` },
  );
  v.on('error', () => {});
  vaults.push(v);
  return v;
};
const append = (v: Redis, n: number) =>
  v.call(
    'FCALL',
    'orb_append',
    '2',
    K.seq,
    K.events,
    '1000',
    '3600',
    'transcript',
    't1',
    JSON.stringify({ n }),
    String(1_700_000_000_000 + n),
    '',
    '0',
    '',
  );
const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)$`, 'm').exec(info.replace(/\r/g, ''))?.[1];
const keyCount = async (i: number) =>
  Number(/^db0:keys=(\d+)/m.exec(String(await set.ask(set.hosts[i], set.port, 'sentinel', 'INFO', 'keyspace')))?.[1] ?? 0);

/** What one node holds of the known data, read as the services' users (orb: session/turn keys, cali: memory and its queue). */
async function contents(i: number) {
  const orb = set.client(set.hosts[i], set.port, 'orb');
  const cali = set.client(set.hosts[i], set.port, 'cali');
  await Promise.all([orb.connect(), cali.connect()]);
  try {
    return {
      session: await orb.hgetall(K.session),
      lateSession: await orb.hgetall(K.lateSession),
      seq: await orb.get(K.seq),
      events: (await orb.xrange(K.events, '-', '+')).map(([id, f]) => [id, f[f.indexOf('data') + 1]]),
      audio: (await orb.getBuffer(K.audio))?.toString('hex'),
      memory: await cali.hgetall(K.memory),
      jobs: (await cali.xrange(K.jobs, '-', '+')).map(([, f]) => f.join(' ')),
      library: Number(await orb.call('FCALL_RO', 'orb_version', '0')),
    };
  } finally {
    orb.disconnect();
    cali.disconnect();
  }
}
let expected: Awaited<ReturnType<typeof contents>>;

beforeAll(async () => {
  set = await prepareSentinelSet('vault-restore-ha');
  for (const d of ['backup', 'restore-backup', 's3']) mkdirSync(join(set.root, d));
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(set.root, 's3'),
    configureBuckets: [{ name: 'vault-backups', configs: [] }],
  });
  const { port } = await s3.run();
  process.env.RESTORE_TEST_S3 = `http://127.0.0.1:${port}`;
  // OrderedReady, as the StatefulSet starts them.
  for (let i = 0; i < 3; i++) await set.startPod(i);
}, 90_000);

afterAll(async () => {
  for (const v of vaults) v.disconnect();
  await set?.close();
  await s3?.close();
});

const s3Config = () =>
  loadEnv(BACKUP_UPLOAD_ENV, {
    BACKUP_DIR: join(set.root, 'backup'),
    BACKUP_S3_ENDPOINT: process.env.RESTORE_TEST_S3!,
    BACKUP_S3_BUCKET: 'vault-backups',
    BACKUP_S3_PREFIX: 'prod/vault/',
    BACKUP_S3_ACCESS_KEY_ID: 'S3RVER',
    BACKUP_S3_SECRET_ACCESS_KEY: 'S3RVER',
  });

test("known data through the services' users, a snapshot by the CronJob's script, uploaded and downloaded with its checksum", async () => {
  // The bootstrap step: the functions user loads the library on the primary; it replicates.
  const fn = vaultAs('functions');
  expect(await loadOrbFunctions(fn)).toBe('orb');
  const orb = vaultAs('orb');
  const cali = vaultAs('cali');
  await orb.hset(K.session, 'owner', 'key-1', 'created', '1700000000000');
  for (let n = 1; n <= 20; n++) expect(await append(orb, n)).toEqual([n, 0]);
  await orb.append(K.audio, AUDIO);
  await orb.xadd(K.jobs, '*', 'job', `${sid}-j1`, 'turn', 't1');
  await cali.hset(K.memory, 'name', 'Ana', 'city', 'Lisbon');

  // Every write acknowledged by both replicas before the snapshot.
  const target = Number(infoField(String(await set.ask(set.hosts[0], set.port, 'sentinel', 'INFO', 'replication')), 'master_repl_offset'));
  await until('both replicas acknowledged', async () => {
    const acked = [
      ...String(await set.ask(set.hosts[0], set.port, 'sentinel', 'INFO', 'replication')).matchAll(/slave\d+:.*?offset=(\d+)/g),
    ].map((m) => Number(m[1]));
    return acked.length === 2 && acked.every((o) => o >= target);
  });
  expected = await contents(0);
  expect(expected.events).toHaveLength(20);
  expect(expected.library).toBe(ORB_LIBRARY_VERSION);
  keysAtBackup = await keyCount(0);
  expect(keysAtBackup).toBe(6);

  const out = execFileSync('sh', ['-c', BACKUP_SCRIPT], {
    encoding: 'utf8',
    env: {
      ...process.env,
      REDIS_HOST: 'vault',
      REDIS_PORT: String(set.port),
      REDIS_USERNAME: 'backup',
      REDIS_PASSWORD: set.passwords.backup,
      REDIS_SENTINELS: sentinels(),
      REDIS_SENTINEL_MASTER: 'vault',
      BACKUP_DIR: join(set.root, 'backup'),
      KEEP: '2',
    },
  });
  expect(out).toMatch(/vault-backup: wrote vault-\d{8}T\d{6}Z\.rdb; kept 1/);
  // The CronJob's second container: the newest snapshot to the bucket, checked by HEAD and a stored SHA-256.
  const local = newestSnapshot(join(set.root, 'backup'));
  const up = await uploadSnapshot(s3Config(), local);
  snapshotName = up.key.split('/').pop()!;
  // The restore's first step for an off-cluster snapshot: the verified download onto the backup volume.
  const down = await downloadSnapshot(s3Config(), snapshotName, join(set.root, 'restore-backup', snapshotName));
  expect(down).toEqual({ bytes: up.bytes, sha256: up.sha256 });
  expect(readFileSync(join(set.root, 'restore-backup', snapshotName)).equals(readFileSync(local))).toBe(true);

  // Written after the snapshot: replicated to (and persisted by) every node, and must not survive the restore.
  await orb.hset(K.lateSession, 'owner', 'key-2');
  expect(await append(orb, 21)).toEqual([21, 0]);
  const late = Number(infoField(String(await set.ask(set.hosts[0], set.port, 'sentinel', 'INFO', 'replication')), 'master_repl_offset'));
  await until('the post-snapshot writes reached both replicas', async () => {
    const acked = [
      ...String(await set.ask(set.hosts[0], set.port, 'sentinel', 'INFO', 'replication')).matchAll(/slave\d+:.*?offset=(\d+)/g),
    ].map((m) => Number(m[1]));
    return acked.length === 2 && acked.every((o) => o >= late);
  });
  for (let i = 0; i < 3; i++) expect((await contents(i)).seq).toBe('21');
});

/**
 * The set goes down as `kubectl scale --replicas=0` takes it, the script's restore step loads the
 * snapshot into vault-0's data dir (`fresh`: an empty one, as a new PVC), and the pods start again
 * in order (OrderedReady).
 */
async function downRestoreUp(fresh: boolean): Promise<string> {
  for (const v of vaults.splice(0)) v.disconnect();
  for (const i of [2, 1, 0]) await set.stopPod(i);
  // The pods are gone: their memory-backed run dirs (replication.conf, sentinel.conf: the Sentinel state) with them.
  for (let i = 0; i < 3; i++) {
    rmSync(join(set.root, `run-${i}`), { recursive: true, force: true });
    mkdirSync(join(set.root, `run-${i}`));
  }
  if (fresh) {
    rmSync(set.dataDir(0), { recursive: true, force: true });
    mkdirSync(set.dataDir(0));
  }
  const out = execFileSync(
    'bash',
    [join(ROOT, 'scripts', 'vault-restore.sh'), '--local', set.dataDir(0), join(set.root, 'restore-backup', snapshotName)],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  for (let i = 0; i < 3; i++) await set.startPod(i);
  return out;
}

async function expectStartedAsRestored() {
  expect(set.logs['redis-0']).toContain(`${set.hosts[0]} starts as the primary`);
  for (const i of [1, 2]) expect(set.logs[`redis-${i}`]).toContain(`starts as a replica of ${set.hosts[0]}`);
  expect(await set.role(0)).toBe('master');
  for (let i = 0; i < 3; i++) expect(await set.masterOf(i)).toBe(set.hosts[0]);
}

/** Both replicas took a full sync from the restored primary and every node holds exactly the snapshot. */
async function expectResynced() {
  const primaryInfo = () => set.ask(set.hosts[0], set.port, 'sentinel', 'INFO').then(String);
  // Both replicas took a full sync (their own AOFs held the post-snapshot writes: a partial one would keep them).
  await until(
    'both replicas fully synced',
    async () =>
      Number(infoField(await primaryInfo(), 'sync_full')) === 2 && Number(infoField(await primaryInfo(), 'connected_slaves')) === 2,
  );
  const offset = Number(infoField(await primaryInfo(), 'master_repl_offset'));
  const replid = infoField(await primaryInfo(), 'master_replid');
  for (const i of [1, 2]) {
    await until(`vault-${i} at the primary's offset`, async () => {
      const info = String(await set.ask(set.hosts[i], set.port, 'sentinel', 'INFO', 'replication'));
      return (
        infoField(info, 'master_link_status') === 'up' &&
        Number(infoField(info, 'slave_repl_offset')) >= offset &&
        infoField(info, 'master_replid') === replid
      );
    });
  }
  for (let i = 0; i < 3; i++) {
    expect(await keyCount(i)).toBe(keysAtBackup);
    const got = await contents(i);
    expect(got).toEqual(expected);
    expect(got.lateSession).toEqual({});
    expect(got.seq).toBe('20');
  }
}

test("scale to 0 (reverse order, preStop, SIGTERM), vault-restore.sh --local into vault-0's data, scale back up in order", async () => {
  expect(snapshotName).toMatch(/^vault-\d{8}T\d{6}Z\.rdb$/);
  const out = await downRestoreUp(false);
  expect(out).toContain(`restore: loaded ${keysAtBackup} keys from ${snapshotName}`);
  expect(readdirSync(set.dataDir(0)).filter((f) => f.startsWith('appendonlydir.before-restore-'))).toHaveLength(1);
  expect(existsSync(join(set.dataDir(0), 'appendonlydir'))).toBe(true);
  await expectStartedAsRestored();
});

test('the replicas resynced in full from the restored primary: same keys, same values, same offset', () => expectResynced());

test('every ACL user authenticates on every node, a wrong password does not, and the restored set takes writes', async () => {
  for (let i = 0; i < 3; i++) {
    for (const user of [...VAULT_USERS, ...VAULT_HA_USERS]) {
      const c = set.client(set.hosts[i], set.port);
      await c.connect();
      try {
        expect(await c.call('AUTH', user, set.passwords[user])).toBe('OK');
        await expect(c.call('AUTH', user, `${set.passwords[user]}x`)).rejects.toThrow(/WRONGPASS/);
      } finally {
        c.disconnect();
      }
    }
  }
  // The Sentinel-aware client finds the restored primary; the session's seq continues from the snapshot.
  const orb = vaultAs('orb');
  expect(await append(orb, 21)).toEqual([21, 0]);
  const offset = Number(infoField(String(await set.ask(set.hosts[0], set.port, 'sentinel', 'INFO', 'replication')), 'master_repl_offset'));
  for (const i of [1, 2]) {
    await until(
      `vault-${i} has the new write`,
      async () =>
        Number(infoField(String(await set.ask(set.hosts[i], set.port, 'sentinel', 'INFO', 'replication')), 'slave_repl_offset')) >= offset,
    );
    expect((await contents(i)).events.at(-1)).toEqual(['21-0', JSON.stringify({ n: 21 })]);
  }
});

test("again into a fresh primary (vault-0's data dir empty, as a new PVC): the replicas resync from it and the writes after the snapshot are gone", async () => {
  const out = await downRestoreUp(true);
  expect(out).toContain(`restore: loaded ${keysAtBackup} keys from ${snapshotName}`);
  expect(readdirSync(set.dataDir(0)).filter((f) => f.startsWith('appendonlydir.before-restore-'))).toHaveLength(0);
  await expectStartedAsRestored();
  // expectResynced also checks seq 20: the write of the previous test (seq 21) is gone from every node.
  await expectResynced();
});
