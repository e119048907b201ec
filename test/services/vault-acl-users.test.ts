/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * The services' real code paths, each component connected as its own vault ACL user (the users
 * the manifests render, loaded from an ACL file into a redis-server of this test's own): the seed
 * step, a gateway (tickets, WebSocket text and voice turns, the OpenAI audio routes, /v1/models,
 * heartbeats, socket leases, rate limits) and in-process whisperx, five cores, CALI and xtts,
 * including their reclaim and trim. The allow-lists are shown sufficient, not only restrictive:
 * every turn ends, and the server's ACL LOG holds no refusal at the end.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import type { VaultUser } from '../../infra/vault-acl';
import { createAcp, dropIfAbandoned, markAbandoned, vaultKeys } from '../../services/acp';
import { loadEnv } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { buildApp } from '../../services/orb/app';
import { seed } from '../../services/seed/main';
import { asrRole } from '../../services/workers/asr/role';
import { caliRole } from '../../services/workers/cali/role';
import { coreRole } from '../../services/workers/core/role';
import { WorkerRuntime } from '../../services/workers/runtime';
import { ttsRole } from '../../services/workers/tts/role';
import { devAcl } from '../../scripts/vault-acl-dev';
import { loadOrbFunctions } from '../../services/acp/functions';
import { RedisServerHandle, startRedisServer } from '../../tools/redis/redis-server';
import { TINY_WHISPER_TRANSCRIPT, writeTinyWhisper } from '../../tools/tiny-models/whisper';
import { writeTinyPiperVoices } from '../../tools/tiny-models/piper';
import { REPO, workerConfig } from './acp/helpers';
import { API_KEYS_ENV, auth, Client, http, listen } from './orb/support';

jest.setTimeout(240_000);

const acl = devAcl({ admin: 'acl-admin-pw' });
let server: RedisServerHandle;
let admin: Redis;
let dir: string;
let app: FastifyInstance;
let host: string;
const clients: Redis[] = [];
const workers: WorkerRuntime[] = [];

function as(user: VaultUser): Redis {
  const c = new Redis({ host: '127.0.0.1', port: server.port, username: user, password: acl.passwords[user], maxRetriesPerRequest: 2 });
  clients.push(c);
  return c;
}

/** Every refusal the server logged (ACL LOG), as `user: reason object`. */
async function refusals(): Promise<string[]> {
  const log = (await admin.call('ACL', 'LOG', '1000')) as unknown[][];
  return log.map((entry) => {
    const f: Record<string, unknown> = {};
    for (let i = 0; i + 1 < entry.length; i += 2) f[String(entry[i])] = entry[i + 1];
    return `${f.username}: ${f.reason} ${f.object} (${f.context}, ${f.count}×)`;
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vault-acl-users-'));
  writeFileSync(join(dir, 'users.acl'), `${acl.lines.join('\n')}\n`);
  server = await startRedisServer({ dir, args: ['--aclfile', join(dir, 'users.acl')] });
  admin = new Redis({ host: '127.0.0.1', port: server.port, username: 'admin', password: 'acl-admin-pw' });

  const vaultEnv = (user: VaultUser) => ({
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: String(server.port),
    REDIS_USERNAME: user,
    REDIS_PASSWORD: acl.passwords[user],
  });
  // The bootstrap step, as the seed Job's init container runs it: the library, as its own user.
  const loader = new Redis({ host: '127.0.0.1', port: server.port, username: 'functions', password: acl.passwords.functions });
  try {
    await loadOrbFunctions(loader);
  } finally {
    loader.disconnect();
  }
  await seed({ ...vaultEnv('seed'), IDENTITY_FILE: join(REPO, 'services', 'seed', 'identity.json') });

  writeTinyWhisper(join(dir, 'whisper'));
  writeTinyPiperVoices(join(dir, 'voices'));
  const w = (podName: string) => workerConfig({ podName, trimIntervalMs: 200, reclaimIdleMs: 500 });
  for (let n = 0; n < 5; n++) {
    workers.push(
      new WorkerRuntime(coreRole, {
        redis: as('core'),
        keyPrefix: '',
        http: false,
        worker: w(`core4-${n}`),
        env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
      }),
    );
  }
  workers.push(
    new WorkerRuntime(caliRole, {
      redis: as('cali'),
      keyPrefix: '',
      http: false,
      worker: w('cali-0'),
      env: { CALI_QUORUM_GRACE_MS: '3000' },
    }),
  );
  workers.push(
    new WorkerRuntime(asrRole, {
      redis: as('whisperx'),
      keyPrefix: '',
      http: false,
      worker: w('whisperx-0'),
      env: { MODEL_DIR: join(dir, 'whisper') },
    }),
  );
  workers.push(
    new WorkerRuntime(ttsRole, {
      redis: as('xtts'),
      keyPrefix: '',
      http: false,
      worker: w('xtts-0'),
      env: { MODEL_DIR: join(dir, 'voices'), TTS_DEFAULT_VOICE: 'tiny-en' },
    }),
  );
  await Promise.all(workers.map((x) => x.start()));

  const env = {
    ...vaultEnv('orb'),
    VAULT_KEY_PREFIX: '',
    POD_NAME: 'orb-acl-0',
    ORB_API_KEYS: API_KEYS_ENV,
    LOG_LEVEL: 'silent',
    ORB_VAD: 'false',
    ORB_MAX_EVENT_LOOP_DELAY_MS: '0',
    ORB_HEARTBEAT_MS: '200',
    ORB_HEARTBEAT_TTL_MS: '2000',
    ORB_TURN_DEADLINE_MS: '60000',
  };
  app = await buildApp({ config: loadEnv(ORB_ENV, env), vault: loadEnv(VAULT_ENV, env), logger: false, tailBlockMs: 100 });
  host = await listen(app);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await Promise.all(workers.map((x) => x.stop()));
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await admin?.quit();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function ticket(): Promise<string> {
  const res = await http(host, { method: 'POST', url: '/v1/session/tickets', headers: auth('alice') });
  expect(res.statusCode).toBe(201);
  return (res.json() as { ticket: string }).ticket;
}

test('a spoken text turn over a ticketed WebSocket: gateway, cores, CALI and xtts each as their own user', async () => {
  const c = new Client(host, `/v1/session?ticket=${await ticket()}&vad=false`);
  await c.opened;
  await c.next((m) => m.type === 'session.ready', 'session.ready');
  c.send({ type: 'text', text: 'my name is Ada. hello there', speak: true });
  const end = await c.next((m) => m.type === 'turn.end', 'turn.end');
  expect(end.data ?? end).toMatchObject({ outcome: 'ok' });
  expect(c.messages.some((m) => m.type === 'reply')).toBe(true);
  expect(c.messages.some((m) => m.type === 'audio')).toBe(true);
  await c.close();
});

test('a voice turn: the gateway writes the utterance audio, whisperx reads it as its user and fans out', async () => {
  const wav = readFileSync(join(REPO, 'test', 'fixtures', 'speech-16k.wav'));
  const c = new Client(host, `/v1/session?ticket=${await ticket()}&vad=false`);
  await c.opened;
  await c.next((m) => m.type === 'session.ready', 'session.ready');
  const pcm = wav.subarray(44);
  for (let i = 0; i < pcm.length; i += 3200) c.ws.send(pcm.subarray(i, Math.min(pcm.length, i + 3200)));
  c.send({ type: 'input_audio.commit' });
  const transcript = await c.next((m) => m.type === 'transcript', 'transcript');
  expect(JSON.stringify(transcript)).toContain(TINY_WHISPER_TRANSCRIPT);
  const end = await c.next((m) => m.type === 'turn.end', 'turn.end');
  expect(end.data ?? end).toMatchObject({ outcome: 'ok' });
  await c.close();
});

test('the OpenAI audio routes and /v1/models: one-shot jobs, the model registry, the cleanup of ephemeral sessions', async () => {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(join(REPO, 'test', 'fixtures', 'speech-16k.wav'))]), 'speech.wav');
  form.append('model', 'whisper-1');
  const tr = await fetch(`http://${host}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: auth('alice') });
  expect(tr.status).toBe(200);
  expect(((await tr.json()) as { text: string }).text).toBe(TINY_WHISPER_TRANSCRIPT);
  const sp = await fetch(`http://${host}/v1/audio/speech`, {
    method: 'POST',
    headers: { ...auth('alice'), 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: 'Hello there.', response_format: 'wav' }),
  });
  expect(sp.status).toBe(200);
  expect((await sp.arrayBuffer()).byteLength).toBeGreaterThan(44);
  const models = await http(host, { url: '/v1/models', headers: auth('alice') });
  expect(models.statusCode).toBe(200);
  expect((models.json() as { data: unknown[] }).data.length).toBeGreaterThan(0);
});

test('an abandoned REST job: the gateway marks it, whisperx drops what it wrote', async () => {
  const keys = vaultKeys('');
  const orb = as('orb');
  const asr = as('whisperx');
  await createAcp(orb, { prefix: '' }).events.append('s-gone', { type: 'turn.start', turn: 't1', data: {} });
  await markAbandoned(orb, keys, 's-gone', 't1', 10_000);
  expect(await dropIfAbandoned(asr, keys, 's-gone', 't1')).toBe(true);
  expect(await admin.exists(keys.turnEvents('s-gone'), keys.turnAbandoned('s-gone', 't1'))).toBe(0);
});

test('heartbeats, readiness and identity under the orb user; every worker reclaims and trims its own queue', async () => {
  expect((await http(host, { url: '/readyz' })).statusCode).toBe(200);
  expect((await http(host, { url: '/v1/replicas', headers: auth('alice') })).json()).toMatchObject({ replicas: [{ pod: 'orb-acl-0' }] });
  expect((await http(host, { url: '/v1/identity', headers: auth('alice') })).statusCode).toBe(200);
  for (const x of workers) await x.consumer!.reclaim();
  const queues = ['whisperx', 'xtts', 'cali', 'core:0', 'core:4'];
  for (const [i, q] of queues.entries()) {
    const user: VaultUser = q.startsWith('core') ? 'core' : (q as VaultUser);
    expect(await createAcp(as(user), { prefix: '' }).bus.trim(q)).toBeGreaterThanOrEqual(0);
    expect(i).toBeGreaterThanOrEqual(0);
  }
});

test('the server refused nothing the services sent (ACL LOG is empty)', async () => {
  const log = await refusals();
  // eslint-disable-next-line no-console
  console.log(`vault ACL users: real code paths ran; ACL LOG refusals: ${log.length}${log.length ? `\n  ${log.join('\n  ')}` : ''}`);
  expect(log).toEqual([]);
});

test('services/ sends no Lua by EVAL or EVALSHA (the ACL refuses both; server-side logic is the orb FUNCTION library)', () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const src = readFileSync(p, 'utf8');
        if (/\.defineCommand\(|\.evalsha?\(|['"]EVAL(SHA)?['"]/i.test(src)) offenders.push(`${p}: EVAL/EVALSHA or ioredis defineCommand`);
        if (/fastifyRateLimit,\s*\{(?![^}]*\bstore\s*:)[^}]*\bredis\b/.test(src))
          offenders.push(`${p}: @fastify/rate-limit's own Redis store (EVAL)`);
      }
    }
  };
  walk(join(REPO, 'services'));
  expect(offenders).toEqual([]);
});
