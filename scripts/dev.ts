/**
 * `npm run dev`: the whole ORB stack as local processes on one machine — a vault (REDIS_URL, else
 * a redis-server of its own with AOF), the seed-vault load, two orb-core replicas, five cores,
 * cali, whisperx and xtts on CPU. Also a module: `startDevStack(opts)` returns handles (kill,
 * restart) per process so the e2e drills and the latency script run the very same stack.
 */
import { COMPONENTS, PORTS } from '../services/contract';
import { spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, startRedisServer, RedisServerHandle } from '../tools/redis/redis-server';
import { VAULT_ENV } from '../services/config/vault';
import { ORB_ENV } from '../services/config/orb';
import { SEED_ENV } from '../services/config/seed';
import { WORKER_ENV } from '../services/config/worker';
import { CORE_ENV } from '../services/config/core';
import { ASR_ENV } from '../services/config/asr';
import { TTS_ENV } from '../services/config/tts';
import type { VaultUser } from '../infra/vault-acl';
import { devAcl } from './vault-acl-dev';

export const REPO_ROOT = resolve(__dirname, '..');

export type DevRole = 'vault' | 'seed' | 'models' | 'orb' | 'core' | 'cali' | 'whisperx' | 'xtts';

export interface DevStackOptions {
  /** Use this vault instead of starting one. @default - process.env.REDIS_URL, else an own redis-server */
  readonly redisUrl?: string;
  /** Directory of the own redis-server's AOF. @default - a fresh temporary directory */
  readonly vaultDir?: string;
  /** Ports of the orb-core replicas, one replica per port; 0 picks a free port. @default [8080, 8081] */
  readonly orbPorts?: readonly number[];
  /** Number of verdict cores (ordinals 0..n-1). @default 5 */
  readonly cores?: number;
  /** Start whisperx and xtts (voice turns). @default true */
  readonly speech?: boolean;
  /** VAULT_KEY_PREFIX of every process. @default '' */
  readonly keyPrefix?: string;
  /** The dev API key (id `dev`). @default - a random 32-hex key */
  readonly apiKey?: string;
  /** Directory of the core models. @default <repo>/models/core */
  readonly coreModelsDir?: string;
  /** Directory of the speech models; built with tools/tiny-models/cli.ts when missing. @default <tmp>/orb-tiny-models */
  readonly speechModelsDir?: string;
  /** Build the web client into web/dist first (the gateways serve it at `/`). @default true */
  readonly web?: boolean;
  /** Identity document the seed loads. @default <repo>/services/seed/identity.json */
  readonly identityFile?: string;
  /** Extra environment for every service process. */
  readonly env?: Readonly<Record<string, string>>;
  /** Where process output goes. @default - stdout lines prefixed with the process name */
  readonly log?: (name: string, line: string) => void;
  /** Limit on each process becoming ready. @default 120000 */
  readonly readyTimeoutMs?: number;
}

export interface DevProcess {
  readonly name: string;
  readonly role: DevRole;
  /** HTTP port (/livez, /readyz, /metrics; orb-core also the API). */
  readonly port: number;
  readonly url: string;
  /** The OS process id of the running node process (not a wrapper). */
  pid(): number | undefined;
  running(): boolean;
  /** Sends a signal to the process (SIGKILL for failure drills). Resolves when it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again on the same port and waits until it is ready. */
  restart(): Promise<void>;
  /** Output lines seen so far (tail), for failure messages. */
  tail(lines?: number): string;
}

export interface DevStack {
  /**
   * The vault for tooling and tests: the own redis-server's `admin` user (full access, dev only;
   * the services each connect as their own ACL user), or the REDIS_URL given.
   */
  readonly vaultUrl: string;
  /** The own redis-server, when the stack started one. */
  readonly vault?: { readonly dir: string; readonly port: number; restart(): Promise<void>; stop(): Promise<void> };
  readonly apiKey: string;
  readonly orbUrls: readonly string[];
  readonly processes: readonly DevProcess[];
  proc(name: string): DevProcess;
  /** Stops every process (SIGTERM, SIGKILL after 10 s) and the own vault. */
  stop(): Promise<void>;
}

const ENTRY = {
  orb: 'services/orb/main.ts',
  worker: 'services/workers/main.ts',
  seed: 'services/seed/main.ts',
  tinyModels: 'tools/tiny-models/cli.ts',
};

function defaultLog(name: string, line: string): void {
  process.stdout.write(`${name.padEnd(10)} | ${line}\n`);
}

/** Runs a TypeScript entry under node with tsx's loader, so a signal reaches the service itself. */
function spawnTs(entry: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Fails fast when another program holds the port: its /readyz must not pass for ours. */
async function assertPortFree(port: number, name: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `${name}: port ${port} is ${err.code === 'EADDRINUSE' ? 'already in use by another program' : `not usable (${err.code})`}; ` +
            'pick other ports (npm run dev: ORB_DEV_PORT=<base>)',
        ),
      ),
    );
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve()));
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, name: string, tail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail()}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready at ${url}/readyz within ${timeoutMs} ms:\n${tail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

class ManagedProcess implements DevProcess {
  private child?: ChildProcess;
  private lines: string[] = [];
  readonly url: string;

  constructor(
    readonly name: string,
    readonly role: DevRole,
    readonly port: number,
    private readonly entry: string,
    private readonly args: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: (name: string, line: string) => void,
    private readonly readyTimeoutMs: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }
  running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  async start(): Promise<void> {
    await assertPortFree(this.port, this.name);
    const child = spawnTs(this.entry, this.args, this.env);
    this.child = child;
    const onData = (buf: Buffer): void => {
      for (const line of String(buf).split('\n')) {
        if (!line) continue;
        this.lines.push(line);
        if (this.lines.length > 400) this.lines.splice(0, 200);
        this.log(this.name, line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    await waitReady(this.url, child, this.readyTimeoutMs, this.name, () => this.tail());
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    // A service that ignores SIGTERM past its drain budget is killed, as the kubelet would.
    const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), 50_000);
    await exited;
    if (timer) clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.kill('SIGTERM');
    await this.start();
  }
}

async function runToCompletion(
  name: string,
  entry: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  log: (name: string, line: string) => void,
  timeoutMs: number,
): Promise<void> {
  const child = spawnTs(entry, args, env);
  const lines: string[] = [];
  const onData = (buf: Buffer): void => {
    for (const line of String(buf).split('\n'))
      if (line) {
        lines.push(line);
        log(name, line);
      }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (c, s) => {
      clearTimeout(timer);
      resolve(c ?? s ?? -1);
    });
  });
  if (code !== 0) throw new Error(`${name} failed (${code}):\n${lines.slice(-40).join('\n')}`);
}

function hasModels(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).length > 0;
}

/** Starts the stack; on any failure everything already started is stopped before rethrowing. */
export async function startDevStack(opts: DevStackOptions = {}): Promise<DevStack> {
  const log = opts.log ?? defaultLog;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
  const apiKey = opts.apiKey ?? randomBytes(16).toString('hex');
  const started: ManagedProcess[] = [];
  let redis: RedisServerHandle | undefined;

  const stopAll = async (): Promise<void> => {
    // Gateways first so clients see a drain, then workers, then the vault they all need.
    const order = [...started].sort((a, b) => Number(b.role === 'orb') - Number(a.role === 'orb'));
    await Promise.all(order.filter((p) => p.role === 'orb').map((p) => p.kill('SIGTERM')));
    await Promise.all(order.filter((p) => p.role !== 'orb').map((p) => p.kill('SIGTERM')));
    await redis?.stop();
  };

  try {
    // ---- vault -------------------------------------------------------------------------
    // The own vault runs the manifests' ACL (infra/vault-acl.ts): every service connects as its
    // own user with a password made for this run. The users live in an ACL file beside the AOF
    // (password hashes only), so a vault restart loads the same users; users set at run time with
    // ACL SETUSER would be gone after a restart, and every service would be locked out.
    let vaultUrl = opts.redisUrl ?? process.env.REDIS_URL ?? '';
    const vaultArgs = ['--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'];
    let vaultDir = opts.vaultDir;
    let vaultEnv: (user: VaultUser) => NodeJS.ProcessEnv = () => ({ [VAULT_ENV.url.name]: vaultUrl });
    if (!vaultUrl) {
      vaultDir ??= mkdtempSync(join(tmpdir(), 'orb-dev-vault-'));
      mkdirSync(vaultDir, { recursive: true });
      const adminPassword = randomBytes(24).toString('base64url');
      const acl = devAcl({ keyPrefix: opts.keyPrefix ?? '', admin: adminPassword });
      writeFileSync(join(vaultDir, 'users.acl'), `${acl.lines.join('\n')}\n`, { mode: 0o600 });
      vaultArgs.push('--aclfile', join(vaultDir, 'users.acl'));
      redis = await startRedisServer({ dir: vaultDir, args: vaultArgs });
      const port = redis.port;
      vaultUrl = `redis://admin:${adminPassword}@127.0.0.1:${port}`;
      vaultEnv = (user) => ({
        [VAULT_ENV.url.name]: '',
        [VAULT_ENV.host.name]: '127.0.0.1',
        [VAULT_ENV.port.name]: String(port),
        [VAULT_ENV.username.name]: user,
        [VAULT_ENV.password.name]: acl.passwords[user],
      });
      log('vault', `redis-server 127.0.0.1:${port} (AOF in ${vaultDir}); ACL users as in the manifests, one per service`);
    } else {
      log('vault', `using ${vaultUrl.replace(/\/\/[^@]*@/, '//***@')} as given (its own users; no ACL applied)`);
    }

    // Variable names come from the services' own schemas: a rename breaks this file's build.
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      NODE_ENV: 'development',
      [ORB_ENV.logLevel.name]: process.env.LOG_LEVEL ?? 'info',
      [VAULT_ENV.keyPrefix.name]: opts.keyPrefix ?? '',
      [ASR_ENV.executionProvider.name]: 'cpu',
      // A killed worker's jobs are taken over within seconds, not the production 30 s.
      [WORKER_ENV.reclaimIdleMs.name]: '5000',
      ...opts.env,
    };

    // ---- speech models (tiny, built locally: no downloads) --------------------------------
    let speech = opts.speech ?? true;
    const speechModelsDir = opts.speechModelsDir ?? join(tmpdir(), 'orb-tiny-models');
    if (speech && !hasModels(speechModelsDir) && !existsSync(join(REPO_ROOT, ENTRY.tinyModels))) {
      // Text turns still work; say loudly why voice turns will not.
      log(
        'models',
        `WARNING: ${ENTRY.tinyModels} is missing and ${speechModelsDir} is empty: starting without whisperx/xtts (text turns only)`,
      );
      speech = false;
    }
    if (speech && !hasModels(speechModelsDir)) {
      log('models', `building tiny speech models into ${speechModelsDir}`);
      await runToCompletion('models', ENTRY.tinyModels, [speechModelsDir], baseEnv, log, 300_000);
    }
    const coreModelsDir = opts.coreModelsDir ?? join(REPO_ROOT, 'models', 'core');

    // ---- seed vault: the FUNCTION library the services FCALL, then the identity ----------
    await runToCompletion(
      'seed',
      ENTRY.seed,
      ['functions'],
      { ...baseEnv, ...vaultEnv('functions'), POD_NAME: COMPONENTS.seedVault },
      log,
      120_000,
    );
    await runToCompletion(
      'seed',
      ENTRY.seed,
      [],
      {
        ...baseEnv,
        ...vaultEnv('seed'),
        POD_NAME: COMPONENTS.seedVault,
        [SEED_ENV.identityFile.name]: opts.identityFile ?? join(REPO_ROOT, 'services', 'seed', 'identity.json'),
      },
      log,
      120_000,
    );

    const add = async (
      name: string,
      role: DevRole,
      port: number,
      entry: string,
      args: string[],
      env: NodeJS.ProcessEnv,
    ): Promise<ManagedProcess> => {
      const user: VaultUser =
        role === 'orb' || role === 'core' || role === 'cali' || role === 'whisperx' || role === 'xtts' ? role : 'seed';
      const p = new ManagedProcess(
        name,
        role,
        port,
        entry,
        args,
        { ...baseEnv, ...vaultEnv(user), ...env, [WORKER_ENV.port.name]: String(port), [WORKER_ENV.podName.name]: name },
        log,
        readyTimeoutMs,
      );
      started.push(p);
      await p.start();
      return p;
    };

    // ---- workers: started together, each waits for its own /readyz -------------------------
    const coreCount = opts.cores ?? 5;
    const workerStarts: Promise<ManagedProcess>[] = [];
    for (let i = 0; i < coreCount; i++) {
      workerStarts.push(
        freePort().then((port) =>
          add(`core4-${i}`, 'core', port, ENTRY.worker, ['core'], {
            [CORE_ENV.ordinal.name]: String(i),
            [CORE_ENV.modelsDir.name]: coreModelsDir,
          }),
        ),
      );
    }
    workerStarts.push(freePort().then((port) => add('cali', 'cali', port, ENTRY.worker, ['cali'], {})));
    if (speech) {
      workerStarts.push(
        freePort().then((port) =>
          add('whisperx', 'whisperx', port, ENTRY.worker, ['whisperx'], { [ASR_ENV.modelDir.name]: join(speechModelsDir, 'whisper') }),
        ),
      );
      workerStarts.push(
        freePort().then((port) =>
          add('xtts', 'xtts', port, ENTRY.worker, ['xtts'], { [TTS_ENV.modelDir.name]: join(speechModelsDir, 'voices') }),
        ),
      );
    }
    await Promise.all(workerStarts);

    // ---- gateways (they serve the web client from web/dist, found at their start-up) -------
    if (opts.web ?? true) {
      const { buildWeb } = await import('../web/build');
      log('web', `built the ORB web client into ${await buildWeb()}`);
    }
    const orbPorts = opts.orbPorts ?? [PORTS.http, PORTS.http + 1];
    const orbs = await Promise.all(
      orbPorts.map(async (p, i) =>
        add(`orb-core-${i}`, 'orb', p || (await freePort()), ENTRY.orb, [], { [ORB_ENV.apiKeys.name]: `dev:${apiKey}` }),
      ),
    );

    const vault =
      redis && vaultDir
        ? {
            dir: vaultDir,
            port: redis.port,
            async restart(): Promise<void> {
              await redis!.stop();
              redis = await startRedisServer({ dir: vaultDir!, port: redis!.port, args: vaultArgs });
            },
            async stop(): Promise<void> {
              await redis!.stop();
            },
          }
        : undefined;

    return {
      vaultUrl,
      vault,
      apiKey,
      orbUrls: orbs.map((o) => o.url),
      processes: started,
      proc(name: string): DevProcess {
        const p = started.find((s) => s.name === name);
        if (!p) throw new Error(`no process '${name}' in the dev stack (have: ${started.map((s) => s.name).join(', ')})`);
        return p;
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function main(): Promise<void> {
  const base = Number(process.env.ORB_DEV_PORT ?? PORTS.http);
  const t0 = Date.now();
  let stack: DevStack;
  try {
    stack = await startDevStack({ orbPorts: [base, base + 1] });
  } catch (err) {
    process.stderr.write(`\nnpm run dev: could not start the stack:\n${(err as Error).message}\n`);
    process.exit(1);
  }
  const lines = [
    '',
    `ORB dev stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    ...stack.orbUrls.map((u, i) => `  orb-core-${i}   ${u}/   (web client)   ${u.replace('http', 'ws')}/v1/session`),
    `  vault        ${stack.vaultUrl.replace(/\/\/[^@]*@/, '//admin:***@')}   (services connect as their own ACL users)`,
    `  API key      ${stack.apiKey}`,
    '',
    `  try: ORB_URL=${stack.orbUrls[0]} ORB_API_KEY=${stack.apiKey} npm run orb:cli -- smoke`,
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${sig}: stopping the dev stack…\n`);
    stack.stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(String(err) + '\n');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) void main();
