/**
 * The vault `npm run dev` starts runs the manifests' ACL: the same rendered users and rules, passwords made per run
 * and kept out of the repository, each service connected as its own user, the default user off.
 * And the drill that once lost a session with the ACL on: a turn, a vault restart, the session and
 * its memory still there, a new turn on it, and not one ACL refusal logged meanwhile.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DevStack, startDevStack } from '../../scripts/dev';
import { aclRules, VAULT_USERS } from '../../infra/vault-acl';
import { nodeWsFactory, orbRequest, sessionWsUrl } from '../../services/cli/http';
import { runTurn } from '../../services/cli/turn';
import { uniquePrefix } from '../support/vault';
import { waitUntil } from './acp/helpers';

jest.setTimeout(400_000);
const prefix = uniquePrefix('devacl');
let stack: DevStack;
let admin: Redis;
const lines: string[] = [];
const tail = () => lines.slice(-80).join('\n');

beforeAll(async () => {
  stack = await startDevStack({
    redisUrl: '',
    orbPorts: [0],
    cores: 3,
    speech: false,
    web: false,
    keyPrefix: prefix,
    env: { LOG_LEVEL: 'warn' },
    log: (name, line) => {
      lines.push(`${name} | ${line}`);
      if (lines.length > 2000) lines.splice(0, 1000);
    },
    readyTimeoutMs: 240_000,
  });
  admin = new Redis(stack.vaultUrl);
}, 400_000);

afterAll(async () => {
  admin?.disconnect();
  await stack?.stop();
  if (stack?.vault) rmSync(stack.vault.dir, { recursive: true, force: true });
}, 120_000);

async function refusals(): Promise<string[]> {
  const log = (await admin.call('ACL', 'LOG', '1000')) as unknown[][];
  return log.map((e) => e.map(String).join(' '));
}

test('the dev vault loads the rendered users from an ACL file: same rules as dist/, hashed per-run passwords, default user off', async () => {
  const file = readFileSync(join(stack.vault!.dir, 'users.acl'), 'utf8');
  for (const user of VAULT_USERS) {
    const line = file.split('\n').find((l) => l.startsWith(`user ${user} `))!;
    expect(line).toMatch(new RegExp(`^user ${user} on #[0-9a-f]{64} `));
    // Exactly the manifests' rules (with the run's key prefix).
    expect(line.replace(/^user \S+ on #[0-9a-f]{64} /, '')).toBe(aclRules(user, prefix));
  }
  // Every running service is connected as its own user, none as default or admin.
  const users = new Set(
    String(await admin.call('CLIENT', 'LIST'))
      .split('\n')
      .map((l) => /user=(\S+)/.exec(l)?.[1])
      .filter(Boolean),
  );
  expect([...users].filter((u) => u !== 'admin').sort()).toEqual(['cali', 'core', 'orb']);
  expect(file).toMatch(/^user default off /m);
  const anon = new Redis({
    port: stack.vault!.port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
    retryStrategy: () => null,
  });
  await anon.connect().catch(() => undefined);
  await expect(anon.get(`${prefix}identity:seed`)).rejects.toThrow(/NOAUTH|NOPERM/);
  anon.disconnect();
});

test('drill: a turn, a vault restart, the same session with its memory, and a new turn on it (no ACL refusal)', async () => {
  const connect = () => nodeWsFactory(stack.apiKey);
  const target = { url: stack.orbUrls[0], apiKey: stack.apiKey, timeoutMs: 60_000 };
  const first = await runTurn({
    urls: stack.orbUrls.map(sessionWsUrl),
    connect: connect(),
    text: 'Hi, my name is Ada.',
    timeoutMs: 120_000,
  });
  if (first.outcome !== 'ok') throw new Error(`first turn: ${first.outcome} ${first.error}\n${tail()}`);
  const sid = first.session;
  const before = await orbRequest<{ last_seq: number; turns: unknown[] }>(target, 'GET', `/v1/sessions/${sid}`);
  expect(before.status).toBe(200);

  await stack.vault!.restart();
  await waitUntil('orb-core ready after the vault restart', async () => (await fetch(`${stack.orbUrls[0]}/readyz`)).ok, 120_000);

  const after = (await waitUntil<{ last_seq: number; turns: unknown[] } | undefined>(
    'the session after the restart',
    async () => {
      const r = await orbRequest<{ last_seq: number; turns: unknown[] }>(target, 'GET', `/v1/sessions/${sid}`);
      return r.status === 200 ? r.body : undefined;
    },
    60_000,
    500,
  )) as { last_seq: number; turns: unknown[] };
  expect(after.last_seq).toBe(before.body.last_seq);
  expect(after.turns).toEqual(before.body.turns);
  expect(JSON.stringify(await admin.hgetall(`${prefix}memory:${sid}`))).toMatch(/Ada/);
  const recall = await runTurn({
    urls: stack.orbUrls.map(sessionWsUrl),
    connect: connect(),
    sessionId: sid,
    lastSeq: after.last_seq,
    text: 'What is my name?',
    timeoutMs: 180_000,
  });
  if (recall.outcome !== 'ok') throw new Error(`turn after the vault restart: ${recall.outcome} ${recall.error}\n${tail()}`);
  expect(recall.reply).toMatch(/Ada/);
  expect(await refusals()).toEqual([]);
  // eslint-disable-next-line no-console
  console.log(`dev vault ACL drill: session ${sid} kept last_seq ${after.last_seq} across the restart; ACL LOG empty`);
});
