/** Starting the real services the benchmarks measure: a vault, the gateway, fixtures. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { loadOrbFunctions } from '../../services/acp/functions';
import { freePort, startRedisServer, type RedisServerHandle } from '../../tools/redis/redis-server';
import { httpOk, spawnService, type ServiceHandle } from './proc';
import { NotAvailable } from './result';

export { freePort };

export async function startVault(): Promise<RedisServerHandle> {
  try {
    return await startRedisServer();
  } catch (err) {
    throw new NotAvailable(`no redis-server for the vault: ${(err as Error).message}`);
  }
}

/** Runs a TypeScript entry under node with tsx's loader (as scripts/dev.ts does), ready on GET `readyPath`. */
export async function startTs(
  root: string,
  entry: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  port: number,
  readyPath = '/readyz',
  readyTimeoutMs = 60_000,
  nodeArgs: readonly string[] = [],
): Promise<ServiceHandle> {
  return spawnService(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, entry), ...args], {
    cwd: root,
    env: { PORT: String(port), ...env },
    ready: httpOk(`http://127.0.0.1:${port}${readyPath}`),
    readyTimeoutMs,
  });
}

export interface GatewayUnderTest {
  readonly url: string;
  readonly apiKey: string;
  readonly proc: ServiceHandle;
  readonly vaultUrl: string;
  readonly prefix: string;
  stop(): Promise<void>;
}

/**
 * What the seed Job does before a gateway can be ready: loads the vault's `orb` FUNCTION library
 * (without it /readyz answers turns: false) and writes the identity document.
 */
async function seedIdentity(vaultUrl: string, prefix: string): Promise<void> {
  const r = new Redis(vaultUrl);
  try {
    await loadOrbFunctions(r);
    await r.set(`${prefix}identity:seed`, JSON.stringify({ name: 'CaleonGenesis', version: '1.12', source: 'bench' }));
    await r.set(`${prefix}identity:version`, '1.12');
  } finally {
    r.disconnect();
  }
}

/**
 * One orb-core replica on 127.0.0.1 against its own vault. Rate limits and per-key socket caps
 * are raised so the load generator measures the request path, not the limiter's 429s (and
 * under-pressure shedding is off); request
 * logging is at `warn` so log I/O is not part of either side.
 */
export async function startGateway(
  root: string,
  extraEnv: NodeJS.ProcessEnv = {},
  nodeArgs: readonly string[] = [],
): Promise<GatewayUnderTest> {
  if (!existsSync(join(root, 'services', 'orb', 'main.ts'))) throw new NotAvailable('services/orb/main.ts (the gateway) has not landed');
  const vault = await startVault();
  const prefix = `bench:${randomBytes(4).toString('hex')}:`;
  const apiKey = randomBytes(16).toString('hex');
  try {
    await seedIdentity(vault.url, prefix);
    const port = await freePort();
    const proc = await startTs(
      root,
      'services/orb/main.ts',
      [],
      {
        HOST: '127.0.0.1',
        REDIS_URL: vault.url,
        VAULT_KEY_PREFIX: prefix,
        POD_NAME: 'orb-bench-0',
        ORB_API_KEYS: `bench:${apiKey}`,
        ORB_RATE_LIMIT_MAX: '1000000000',
        ORB_MAX_SOCKETS_PER_KEY: '100000',
        LOG_LEVEL: 'warn',
        // Load shedding off: on a shared machine a stall should show as latency, not as a 503.
        ORB_MAX_EVENT_LOOP_DELAY_MS: '0',
        ...extraEnv,
      },
      port,
      '/readyz',
      180_000,
      nodeArgs,
    );
    return {
      url: `http://127.0.0.1:${port}`,
      apiKey,
      proc,
      vaultUrl: vault.url,
      prefix,
      stop: async () => {
        await proc.stop();
        await vault.stop({ removeDir: true });
      },
    };
  } catch (err) {
    await vault.stop({ removeDir: true });
    throw err;
  }
}

/** A bare Fastify hello-world in its own process (the gateway baseline). */
export async function startHello(root: string): Promise<{ url: string; proc: ServiceHandle }> {
  const port = await freePort();
  const proc = await startTs(root, 'bench/fixtures/hello-fastify.ts', [], {}, port, '/');
  return { url: `http://127.0.0.1:${port}`, proc };
}

/**
 * The session-read floor (bench/fixtures/session-read-floor.ts) in its own process, reading the
 * gateway's own vault and keys with the gateway's API key.
 */
export async function startSessionReadFloor(root: string, gw: GatewayUnderTest): Promise<{ url: string; proc: ServiceHandle }> {
  const port = await freePort();
  const proc = await startTs(
    root,
    'bench/fixtures/session-read-floor.ts',
    [],
    {
      REDIS_URL: gw.vaultUrl,
      FLOOR_PREFIX: gw.prefix,
      FLOOR_API_KEY: gw.apiKey,
    },
    port,
    '/readyz',
  );
  return { url: `http://127.0.0.1:${port}`, proc };
}
