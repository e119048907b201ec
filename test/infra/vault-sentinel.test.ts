/**
 * The rendered HA vault on real processes: three `redis-server` and three `redis-server --sentinel`
 * started by the ConfigMap's own scripts from the rendered redis.conf and ACL rules, on loopback
 * (each "pod" its own 127.0.N.x address, so the scripts' one-port-per-role layout holds). Then the
 * primary's pod dies (SIGKILL of its redis and Sentinel), a Sentinel promotes a replica, a client
 * from services/acp/vault.ts follows, and the restarted pod rejoins as a replica. The set itself
 * (rendering, files, ACLs, pods) is test/support/sentinel-set.ts, shared with the drills.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { BACKUP_SCRIPT } from '../../infra';
import { connectVault } from '../../services/acp/vault';
import { loadEnv } from '../../services/config/env';
import { VAULT_ENV } from '../../services/config/vault';
import { prepareSentinelSet, type SentinelSet } from '../support/sentinel-set';
import { waitUntil } from '../support/wait';

describe('HA vault: rendered Sentinel set on real processes', () => {
  let set: SentinelSet;
  // The set's own helpers, under the names the tests below use.
  let hosts: string[];
  let port: number;
  let sentinelPort: number;
  let passwords: Record<string, string>;
  let procs: SentinelSet['procs'];
  let logs: SentinelSet['logs'];
  let root: string;
  const env = (i: number) => set.env(i);
  const ask = (host: string, p: number, user: string, ...cmd: string[]) => set.ask(host, p, user, ...cmd);
  const role = (i: number) => set.role(i);
  const linkUp = (i: number) => set.linkUp(i);
  const masterOf = (i: number) => set.masterOf(i);
  const startPod = (i: number) => set.startPod(i);
  /** Service clients a test makes itself (the set's own close ends those it made). */
  const clients: Redis[] = [];

  beforeAll(async () => {
    // preStop's handover gets the StatefulSet's default wait here (the last test asserts the handover itself).
    set = await prepareSentinelSet('vault-ha', { prestopWaitS: 15 });
    ({ hosts, port, sentinelPort, passwords, procs, logs, root } = set);
    mkdirSync(join(root, 'backup'));
    // OrderedReady, as the StatefulSet starts them.
    for (let i = 0; i < 3; i++) await startPod(i);
  }, 60_000);

  afterAll(async () => {
    await set.close();
    for (const c of clients) if (c.status !== 'end') c.disconnect();
  });

  test('vault-0 bootstraps as the primary; the others replicate from it; every Sentinel knows the set', async () => {
    expect(await role(0)).toBe('master');
    expect(await linkUp(1)).toBe(true);
    expect(await linkUp(2)).toBe(true);
    for (let i = 0; i < 3; i++) expect(await masterOf(i)).toBe(hosts[0]);
    const info = (await ask(hosts[0], sentinelPort, 'sentinel', 'SENTINEL', 'master', 'vault')) as string[];
    const field = (k: string) => info[info.indexOf(k) + 1];
    await waitUntil('Sentinels discover each other', async () => {
      const i2 = (await ask(hosts[0], sentinelPort, 'sentinel', 'SENTINEL', 'master', 'vault')) as string[];
      return i2[i2.indexOf('num-other-sentinels') + 1] === '2' && i2[i2.indexOf('num-slaves') + 1] === '2';
    });
    expect(field('quorum')).toBe('2');
    expect(logs['redis-1']).toContain(`starts as a replica of ${hosts[0]}`);
  });

  test('the HA users and the Sentinel-side ACL allow only what they are for', async () => {
    await expect(ask(hosts[0], port, 'replication', 'GET', 'x')).rejects.toThrow(/NOPERM/);
    await expect(ask(hosts[0], port, 'replication', 'INFO')).rejects.toThrow(/NOPERM/);
    await expect(ask(hosts[0], port, 'sentinel', 'GET', 'x')).rejects.toThrow(/NOPERM/);
    await expect(ask(hosts[0], port, 'sentinel', 'FLUSHALL')).rejects.toThrow(/NOPERM/);
    // A service user on a Sentinel: discovery yes, reconfiguration no.
    expect(await ask(hosts[1], sentinelPort, 'orb', 'SENTINEL', 'get-master-addr-by-name', 'vault')).toEqual([hosts[0], String(port)]);
    await expect(ask(hosts[1], sentinelPort, 'orb', 'SENTINEL', 'FAILOVER', 'vault')).rejects.toThrow(/NOPERM/);
    await expect(ask(hosts[1], sentinelPort, 'orb', 'SENTINEL', 'SET', 'vault', 'quorum', '1')).rejects.toThrow(/NOPERM/);
    // No anonymous access anywhere.
    const anon = set.client(hosts[1], sentinelPort);
    await anon.connect();
    await expect(anon.call('SENTINEL', 'get-master-addr-by-name', 'vault')).rejects.toThrow(/NOAUTH|NOPERM/);
    anon.disconnect();
  });

  test('SIGKILL of the primary pod: a replica is promoted, the Sentinel-aware client follows, the pod rejoins as a replica', async () => {
    const cfg = loadEnv(VAULT_ENV, {
      REDIS_SENTINELS: hosts.map((h) => `${h}:${sentinelPort}`).join(','),
      REDIS_SENTINEL_MASTER: 'vault',
      REDIS_USERNAME: 'orb',
      REDIS_PASSWORD: passwords.orb,
    });
    const vault = connectVault(cfg, { connectionName: 'ha-test' });
    const errors: string[] = [];
    vault.on('error', (err: Error) => errors.push(err.message));
    clients.push(vault);
    const prefix = `orb:ha-test:${process.pid}:`;
    for (let n = 0; n < 50; n++) await vault.set(`${prefix}${n}`, String(n));
    // Acknowledged by a replica before the kill: these must survive the failover. (The primary's
    // INFO says which offset each replica has acknowledged; the gateway's own check is the delivery
    // fence, SET + WAIT, in services/acp/replication.ts and test/services/vault-drills.test.ts.)
    const info = String(await ask(hosts[0], port, 'sentinel', 'INFO', 'replication'));
    const target = Number(/master_repl_offset:(\d+)/.exec(info)?.[1]);
    expect(target).toBeGreaterThan(0);
    await waitUntil('a replica acknowledged every write', async () => {
      const acked = [...String(await ask(hosts[0], port, 'sentinel', 'INFO', 'replication')).matchAll(/slave\d+:.*?offset=(\d+)/g)].map(
        (m) => Number(m[1]),
      );
      return acked.some((o) => o >= target) || undefined;
    });

    const killedAt = Date.now();
    procs['redis-0'].kill('SIGKILL');
    procs['sentinel-0'].kill('SIGKILL');
    // Keep writing through the failover: the client must land on the new primary by itself.
    let written = 50;
    let failedWrites = 0;
    const newPrimary = await waitUntil(
      'a replica is promoted',
      async () => {
        try {
          await vault.set(`${prefix}${written}`, String(written));
          written += 1;
        } catch {
          failedWrites += 1;
        }
        const m = await masterOf(1).catch(() => undefined);
        return m && m !== hosts[0] ? m : undefined;
        // Two Sentinels left may split their vote; each retry waits 2 x failover-timeout (12 s here).
      },
      45_000,
    );
    const promotedMs = Date.now() - killedAt;
    await waitUntil(
      'the client writes to the new primary',
      async () => {
        await vault.set(`${prefix}after`, 'yes');
        return true;
      },
      20_000,
    );
    const followedMs = Date.now() - killedAt;
    expect([hosts[1], hosts[2]]).toContain(newPrimary);
    for (let n = 0; n < 50; n++) expect(await vault.get(`${prefix}${n}`)).toBe(String(n));
    expect(await vault.get(`${prefix}after`)).toBe('yes');
    // eslint-disable-next-line no-console
    console.log(
      `HA vault failover: promoted after ${promotedMs} ms, client writing again after ${followedMs} ms (${written - 50} writes during, ${failedWrites} failed attempts, client errors: ${[...new Set(errors)].join('; ') || 'none'})`,
    );

    // The pod comes back: both scripts ask the peer Sentinels and rejoin under the new primary.
    await startPod(0);
    expect(await role(0)).toBe('slave');
    expect(logs['redis-0']).toContain(`starts as a replica of ${newPrimary}`);
    expect(await masterOf(0)).toBe(newPrimary);
    await waitUntil('vault-0 has resynced', () => linkUp(0));
    await vault.quit();
    // quit() leaves the failover detector's Sentinel subscriptions open; disconnect() closes them.
    vault.disconnect();
  }, 90_000);

  test('the backup script snapshots the primary the Sentinels name (as the backup user)', async () => {
    const primary = await masterOf(1);
    const out = execFileSync('sh', ['-c', BACKUP_SCRIPT], {
      encoding: 'utf8',
      env: {
        ...process.env,
        REDIS_HOST: 'vault',
        REDIS_PORT: String(port),
        REDIS_USERNAME: 'backup',
        REDIS_PASSWORD: passwords.backup,
        REDIS_SENTINELS: hosts.map((h) => `${h}:${sentinelPort}`).join(','),
        REDIS_SENTINEL_MASTER: 'vault',
        BACKUP_DIR: join(root, 'backup'),
        KEEP: '2',
      },
    });
    expect(out).toMatch(/vault-backup: wrote vault-\d{8}T\d{6}Z\.rdb; kept 1/);
    const [rdb] = readdirSync(join(root, 'backup'));
    expect(
      readFileSync(join(root, 'backup', rdb))
        .subarray(0, 5)
        .toString(),
    ).toBe('REDIS');
    expect(hosts).toContain(primary);
  }, 30_000);

  test('preStop on the primary hands the primary role to a replica before the pod stops', async () => {
    const primary = await masterOf(1);
    const i = hosts.indexOf(primary);
    execFileSync('sh', [join(root, 'prestop.sh')], { env: env(i), timeout: 30_000 });
    expect(await role(i)).toBe('slave');
    const next = await waitUntil('the Sentinels agree on a new primary', async () => {
      const m = await masterOf((i + 1) % 3);
      return m !== primary ? m : undefined;
    });
    expect(hosts).toContain(next);
    expect(next).not.toBe(primary);
  }, 40_000);
});
