/**
 * The rendered HA vault on real processes: three `redis-server` and three `redis-server --sentinel`
 * started by the ConfigMap's own scripts from the rendered redis.conf and ACL rules, on loopback
 * (each "pod" its own 127.0.N.x address, so the scripts' one-port-per-role layout holds). Then the
 * primary's pod dies (SIGKILL of its redis and Sentinel), a Sentinel promotes a replica, a client
 * from services/acp/vault.ts follows, and the restarted pod rejoins as a replica.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Testing } from 'cdk8s';
import { BACKUP_SCRIPT, Vault, VAULT_HA_USERS, VAULT_USERS } from '../../infra';
import { connectVault } from '../../services/acp/vault';
import { loadEnv } from '../../services/config/env';
import { VAULT_ENV } from '../../services/config/vault';
import { freePort } from '../../tools/redis/redis-server';
import { waitUntil } from '../support/wait';

const RES = {
  cpu: { request: '10m', limit: '100m' },
  memory: { request: '16Mi', limit: '64Mi' },
  ephemeralStorage: { request: '1Mi', limit: '8Mi' },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HA vault: rendered Sentinel set on real processes', () => {
  const app = Testing.chart();
  new Vault(app, 'vault', { image: 'redis:7.4.1', resources: RES, storage: '1Gi', maxMemory: '64mb', replicas: 3 });
  const objs = Testing.synth(app);
  const cm = (name: string) => objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name).data as Record<string, string>;
  const conf = cm('vault-config');
  const nodeRules = cm('vault-acl-rules');
  const sentinelRules = cm('vault-sentinel-acl-rules');

  const root = mkdtempSync(join(tmpdir(), 'vault-ha-'));
  // A /16 of loopback per run: parallel runs on this machine do not collide.
  const net = `127.${10 + (process.pid % 200)}.${1 + Math.floor(Math.random() * 250)}`;
  const hosts = [1, 2, 3].map((i) => `${net}.${i}`);
  const passwords: Record<string, string> = {};
  let port = 0;
  let sentinelPort = 0;
  const procs: Record<string, ChildProcess> = {};
  const logs: Record<string, string> = {};
  const clients: Redis[] = [];

  const env = (i: number) => ({
    ...process.env,
    VAULT_SELF: hosts[i],
    VAULT_NODES: hosts.join(' '),
    VAULT_PORT: String(port),
    SENTINEL_PORT: String(sentinelPort),
    VAULT_MASTER_NAME: 'vault',
    VAULT_ACL_DIR: join(root, 'secrets'),
    VAULT_RUN_DIR: join(root, `run-${i}`),
    SENTINEL_QUORUM: '2',
    SENTINEL_DOWN_AFTER_MS: '1000',
    SENTINEL_FAILOVER_TIMEOUT_MS: '6000',
    SENTINEL_ACL_FILE: join(root, 'sentinel.acl'),
    SENTINEL_BIND: hosts[i],
    PRESTOP_WAIT_S: '15',
  });
  const start = (kind: 'redis' | 'sentinel', i: number) => {
    const key = `${kind}-${i}`;
    const args = kind === 'redis' ? [join(root, 'start-redis.sh'), join(root, `redis-${i}.conf`)] : [join(root, 'start-sentinel.sh')];
    const child = spawn('sh', args, { env: env(i), stdio: ['ignore', 'pipe', 'pipe'] });
    logs[key] = '';
    child.stdout?.on('data', (d) => {
      logs[key] += String(d);
    });
    child.stderr?.on('data', (d) => {
      logs[key] += String(d);
    });
    procs[key] = child;
  };
  const cli = (host: string, p: number, user: string) => {
    const c = new Redis({
      host,
      port: p,
      username: user,
      password: passwords[user],
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const ask = async (host: string, p: number, user: string, ...cmd: string[]) => {
    const c = cli(host, p, user);
    try {
      await c.connect();
      return await c.call(cmd[0], ...cmd.slice(1));
    } finally {
      c.disconnect();
    }
  };
  const role = async (i: number) => ((await ask(hosts[i], port, 'sentinel', 'ROLE')) as unknown[])[0] as string;
  const linkUp = async (i: number) => /master_link_status:up/.test(String(await ask(hosts[i], port, 'sentinel', 'INFO', 'replication')));
  const masterOf = async (i: number) =>
    ((await ask(hosts[i], sentinelPort, 'sentinel', 'SENTINEL', 'get-master-addr-by-name', 'vault')) as string[])[0];
  const startPod = async (i: number) => {
    start('redis', i);
    start('sentinel', i);
    await waitUntil(`pod ${i} ready`, async () => ((await role(i)) === 'master' || (await linkUp(i))) && Boolean(await masterOf(i))).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n--- redis-${i}:\n${logs[`redis-${i}`]}\n--- sentinel-${i}:\n${logs[`sentinel-${i}`]}`);
      },
    );
  };

  beforeAll(async () => {
    port = await freePort();
    do sentinelPort = await freePort();
    while (sentinelPort === port);
    for (const d of ['backup', 'node-rules', 'sentinel-rules', 'secrets', 'run-0', 'run-1', 'run-2', 'data-0', 'data-1', 'data-2'])
      mkdirSync(join(root, d));
    for (const [f, text] of Object.entries(conf)) writeFileSync(join(root, f), text);
    for (const [f, text] of Object.entries(nodeRules)) writeFileSync(join(root, 'node-rules', f), text);
    for (const [f, text] of Object.entries(sentinelRules)) writeFileSync(join(root, 'sentinel-rules', f), text);
    for (const user of [...VAULT_USERS, ...VAULT_HA_USERS]) {
      passwords[user] = `pw-${user}-${Math.random().toString(36).slice(2)}`;
      writeFileSync(join(root, 'secrets', `${user}-password`), passwords[user]);
    }
    const assemble = join(root, 'node-rules', 'assemble-acl.sh');
    execFileSync('sh', [assemble, join(root, 'node-rules'), join(root, 'secrets'), join(root, 'users.acl')]);
    execFileSync('sh', [assemble, join(root, 'sentinel-rules'), join(root, 'secrets'), join(root, 'sentinel.acl')]);
    // The rendered redis.conf with this node's address, port and paths instead of the pod's.
    for (let i = 0; i < 3; i++) {
      writeFileSync(
        join(root, `redis-${i}.conf`),
        conf['redis.conf']
          .replace(/^bind .*$/m, `bind ${hosts[i]}`)
          .replace(/^port .*$/m, `port ${port}`)
          .replace(/^dir .*$/m, `dir ${join(root, `data-${i}`)}`)
          .replace(/^aclfile .*$/m, `aclfile ${join(root, 'users.acl')}`)
          .replace(/^include .*$/m, `include ${join(root, `run-${i}`, 'replication.conf')}`),
      );
    }
    // OrderedReady, as the StatefulSet starts them.
    for (let i = 0; i < 3; i++) await startPod(i);
  }, 60_000);

  afterAll(async () => {
    // Servers first: the clients' sockets then close at once instead of waiting out ioredis' disconnect timer.
    await Promise.all(
      Object.values(procs)
        .filter((p) => p.exitCode === null && p.signalCode === null)
        .map(
          (p) =>
            new Promise((resolve) => {
              p.once('exit', resolve);
              p.kill('SIGKILL');
            }),
        ),
    );
    for (const c of clients) if (c.status !== 'end') c.disconnect();
    await sleep(200);
    rmSync(root, { recursive: true, force: true });
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
    const anon = new Redis({
      host: hosts[1],
      port: sentinelPort,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    clients.push(anon);
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
