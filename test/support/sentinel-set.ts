/**
 * The rendered HA vault as real processes on loopback: three `redis-server` and three
 * `redis-server --sentinel`, each started by the vault-config ConfigMap's own scripts from the
 * rendered redis.conf and ACL rules. Each "pod" gets its own 127.a.b.N address, so the scripts'
 * one-port-per-role layout holds, a data dir (its PVC) and a run dir (its memory-backed emptyDir).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Testing } from 'cdk8s';
import { Vault, VAULT_HA_USERS, VAULT_USERS } from '../../infra';
import { freePort } from '../../tools/redis/redis-server';

const RES = {
  cpu: { request: '10m', limit: '100m' },
  memory: { request: '16Mi', limit: '64Mi' },
  ephemeralStorage: { request: '1Mi', limit: '8Mi' },
};
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(100);
  }
}

export interface SentinelSet {
  readonly root: string;
  readonly hosts: string[];
  readonly port: number;
  readonly sentinelPort: number;
  readonly passwords: Record<string, string>;
  readonly logs: Record<string, string>;
  readonly procs: Record<string, ChildProcess>;
  /** Environment of pod i's scripts (as the StatefulSet sets it). */
  env(i: number): NodeJS.ProcessEnv;
  dataDir(i: number): string;
  /** Starts pod i's redis and Sentinel and waits until it is a primary or a linked replica and its Sentinel names a primary. */
  startPod(i: number): Promise<void>;
  /** Stops pod i as the kubelet does: preStop of the redis container, then SIGTERM to both containers; waits for exit. */
  stopPod(i: number): Promise<void>;
  /** A throwaway client as `user` (none: unauthenticated), closed by close(). */
  client(host: string, port: number, user?: string): Redis;
  ask(host: string, port: number, user: string, ...cmd: string[]): Promise<unknown>;
  role(i: number): Promise<string>;
  linkUp(i: number): Promise<boolean>;
  masterOf(i: number): Promise<string>;
  close(): Promise<void>;
}

/**
 * Renders a 3-node Vault (no key prefix), writes its files under a fresh temp dir, assembles the ACL
 * files. Starts nothing. `prestopWaitS`: how long preStop waits for a handover (PRESTOP_WAIT_S; 3).
 */
export async function prepareSentinelSet(tag: string, opts: { readonly prestopWaitS?: number } = {}): Promise<SentinelSet> {
  const app = Testing.chart();
  new Vault(app, 'vault', { image: 'redis:7.4.1', resources: RES, storage: '1Gi', maxMemory: '64mb', replicas: 3 });
  const objs = Testing.synth(app);
  const cm = (name: string) => objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name).data as Record<string, string>;
  const conf = cm('vault-config');
  const nodeRules = cm('vault-acl-rules');
  const sentinelRules = cm('vault-sentinel-acl-rules');

  const root = mkdtempSync(join(tmpdir(), `${tag}-`));
  // A /16 of loopback per run: parallel runs on this machine do not collide.
  const net = `127.${10 + (process.pid % 200)}.${1 + Math.floor(Math.random() * 250)}`;
  const hosts = [1, 2, 3].map((i) => `${net}.${i}`);
  const passwords: Record<string, string> = {};
  const port = await freePort();
  let sentinelPort: number;
  do sentinelPort = await freePort();
  while (sentinelPort === port);
  const procs: Record<string, ChildProcess> = {};
  const logs: Record<string, string> = {};
  const clients: Redis[] = [];

  for (const d of ['node-rules', 'sentinel-rules', 'secrets', 'run-0', 'run-1', 'run-2', 'data-0', 'data-1', 'data-2'])
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

  const env = (i: number): NodeJS.ProcessEnv => ({
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
    PRESTOP_WAIT_S: String(opts.prestopWaitS ?? 3),
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
  const client = (host: string, p: number, user?: string) => {
    const c = new Redis({
      host,
      port: p,
      ...(user ? { username: user, password: passwords[user] } : {}),
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
    const c = client(host, p, user);
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
  const alive = (p?: ChildProcess) => Boolean(p && p.exitCode === null && p.signalCode === null);
  const stop = (p?: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') =>
    alive(p)
      ? new Promise<void>((resolve) => {
          p!.once('exit', () => resolve());
          p!.kill(signal);
        })
      : Promise.resolve();

  return {
    root,
    hosts,
    port,
    sentinelPort,
    passwords,
    logs,
    procs,
    env,
    client,
    ask,
    role,
    linkUp,
    masterOf,
    dataDir: (i) => join(root, `data-${i}`),
    async startPod(i) {
      start('redis', i);
      start('sentinel', i);
      await until(
        `pod ${i} ready`,
        async () => ((await role(i)) === 'master' || (await linkUp(i))) && Boolean(await masterOf(i)),
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n--- redis-${i}:\n${logs[`redis-${i}`]}\n--- sentinel-${i}:\n${logs[`sentinel-${i}`]}`);
      });
    },
    async stopPod(i) {
      execFileSync('sh', [join(root, 'prestop.sh')], { env: env(i), timeout: 30_000 });
      await Promise.all([stop(procs[`redis-${i}`]), stop(procs[`sentinel-${i}`])]);
    },
    async close() {
      // Servers first: the clients' sockets then close at once instead of waiting out ioredis' disconnect timer.
      await Promise.all(Object.values(procs).map((p) => stop(p, 'SIGKILL')));
      for (const c of clients) if (c.status !== 'end') c.disconnect();
      await sleep(200);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
