/**
 * orb-core as a real process (`node --import tsx services/orb/main.ts`): configuration errors,
 * SIGTERM drain order, and heartbeats that expire when a replica dies without cleaning up.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { freePort } from '../../../tools/redis/redis-server';
import { auth, Client, gatewayEnv, http, seedIdentity, waitFor } from './support';

const root = join(__dirname, '..', '..', '..');
const prefix = uniquePrefix('orbproc');
const redis = testRedis();
const children: ChildProcess[] = [];

interface Gateway {
  proc: ChildProcess;
  host: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  output: () => string;
}

function spawnGateway(env: Record<string, string>): Gateway {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'services/orb/main.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, host: `127.0.0.1:${env.PORT}`, exited, output: () => out };
}

async function ready(g: Gateway): Promise<void> {
  await waitFor(
    async () => {
      if (g.proc.exitCode !== null) throw new Error(`gateway exited: ${g.output()}`);
      try {
        return (await http(g.host, { url: '/readyz' })).statusCode === 200;
      } catch {
        return false;
      }
    },
    'gateway ready',
    60_000,
  );
}

beforeAll(async () => {
  await seedIdentity(redis, prefix);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('a bad environment stops the start with a message naming each variable', async () => {
  const g = spawnGateway({ ...gatewayEnv(prefix, 'orb-bad'), PORT: 'eighty', ORB_API_KEYS: 'nocolon', ORB_MAX_SOCKETS_PER_KEY: '0' });
  const { code } = await g.exited;
  expect(code).toBe(78);
  expect(g.output()).toContain('PORT="eighty": must be an integer');
  expect(g.output()).toContain('ORB_API_KEYS=<redacted>: entry 1 must be id:key or id:sha256:<hex>');
  expect(g.output()).toContain('ORB_MAX_SOCKETS_PER_KEY="0": must be at least 1');
}, 60_000);

test('SIGTERM: readiness flips first, sockets close 1012 with a resume hint, in-flight HTTP finishes, exit 0', async () => {
  const port = await freePort();
  const g = spawnGateway({
    ...gatewayEnv(prefix, 'orb-drain'),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ORB_DRAIN_DELAY_MS: '1500',
    ORB_TURN_DEADLINE_MS: '4000',
    ORB_DRAIN_TIMEOUT_MS: '20000',
  });
  await ready(g);
  const sock = new Client(g.host, '/v1/session', auth('alice'));
  const hello = await sock.next((m) => m.type === 'session.ready', 'session.ready');
  // A text turn in flight (no workers: it ends with 504 at its deadline, after the drain has begun).
  const inflight = http(g.host, {
    method: 'POST',
    url: '/v1/turns',
    headers: auth('alice'),
    payload: { session: hello.session, text: 'are you there?' },
  });
  await waitFor(async () => (await redis.xlen(`${prefix}acp:jobs:cali`)) > 0, 'turn on the bus');

  g.proc.kill('SIGTERM');
  const notReady = await waitFor(async () => {
    const r = await http(g.host, { url: '/readyz' });
    return r.statusCode === 503 ? r : null;
  }, 'readiness off');
  expect(notReady.json()).toMatchObject({ status: 'draining', checks: { draining: true } });
  expect(sock.closeCode).toBeNull(); // readiness flipped while the socket was still open

  await sock.closed;
  expect(sock.closeCode).toBe(1012);
  expect(JSON.parse(sock.closeReason)).toEqual({ reconnect: true, session: hello.session, last_seq: expect.any(Number) });

  const res = await inflight;
  expect({ status: res.statusCode, code: res.json().code }).toEqual({ status: 504, code: 'ORB_ERR_TURN_TIMEOUT' });
  const exit = await g.exited;
  if (exit.code !== 0) process.stderr.write(g.output());
  expect(exit).toEqual({ code: 0, signal: null });
  expect(await redis.exists(`${prefix}orb:replica:orb-drain`)).toBe(0);
  // pino JSON logs, with the key redacted.
  const lines = g
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  expect(lines.some((l) => l.msg === 'draining: readiness off')).toBe(true);
  expect(g.output()).not.toContain('alice-key');
  expect(lines.some((l) => l.req?.headers?.authorization === '[Redacted]')).toBe(true);
}, 90_000);

test('heartbeats appear and expire when a replica dies without cleaning up', async () => {
  const port = await freePort();
  const g = spawnGateway({
    ...gatewayEnv(prefix, 'orb-doomed'),
    PORT: String(port),
    HOST: '127.0.0.1',
    ORB_HEARTBEAT_MS: '200',
    ORB_HEARTBEAT_TTL_MS: '1500',
  });
  await ready(g);
  const listed = async () =>
    ((await http(g.host, { url: '/v1/replicas', headers: auth('alice') })).json().replicas as { pod: string }[]).map((r) => r.pod);
  expect(await listed()).toContain('orb-doomed');
  g.proc.kill('SIGKILL');
  await g.exited;
  expect(await redis.exists(`${prefix}orb:replica:orb-doomed`)).toBe(1); // nobody removed it...
  await waitFor(async () => (await redis.exists(`${prefix}orb:replica:orb-doomed`)) === 0, 'heartbeat expiry'); // ...its TTL did
}, 90_000);
