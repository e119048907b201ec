/**
 * Is the vault's keyspace ready for Redis Cluster? In a cluster every key lives in one of 16384
 * hash slots (CRC16 of the key, or of its `{hash tag}`), and a multi-key command, a MULTI block or
 * an FCALL must keep all its keys in one slot. This test classifies every key builder of
 * services/acp/keys.ts (a new builder fails it until it is classified), computes slots as the
 * Cluster spec does (cross-checked against a real `CLUSTER KEYSLOT`), and
 * states the current layout as it is (docs/capacity.md, "Towards Redis Cluster"):
 * - today no key has a hash tag: one session's keys are spread over as many slots as it has keys;
 * - the planned layout (the session id as the tag, `session:{<sid>}`, `turn:{<sid>}:events`, …)
 *   puts a session's keys in one slot and still matches every ACL key pattern;
 * - even then the FCALLs and MULTI blocks that join a session's keys with a global key
 *   (turn:deadlines, job streams, acp:done:*) or per-pod keys stay cross-slot.
 */
import { aclRules, VAULT_USERS } from '../../../infra/vault-acl';
import { vaultKeys, type VaultKeys } from '../../../services/acp/keys';
import { SessionStore } from '../../../services/orb/session-store';
import { startRedisServer } from '../../../tools/redis/redis-server';
import Redis from 'ioredis';

/** CRC16-CCITT (XModem), the checksum of the Redis Cluster spec. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * The key's hash slot: CRC16 of the part between the first `{` and the first `}` after it when
 * that part is non-empty, else of the whole key. (Written here rather than taken from ioredis'
 * cluster-key-slot 1.1.1, which hashes `{}{x}` differently from Redis 7: the real-server test
 * below caught it.)
 */
function keySlot(key: string): number {
  const buf = Buffer.from(key);
  const open = buf.indexOf('{');
  if (open >= 0) {
    const close = buf.indexOf('}', open + 1);
    if (close > open + 1) return crc16(buf.subarray(open + 1, close)) % 16384;
  }
  return crc16(buf) % 16384;
}

type Builder = (k: VaultKeys, sid: string) => string;
/** Keys of one session (everything that expires with it). */
const PER_SESSION: Record<string, Builder> = {
  session: (k, s) => k.session(s),
  turnEvents: (k, s) => k.turnEvents(s),
  turnSeq: (k, s) => k.turnSeq(s),
  turn: (k, s) => k.turn(s, 'turn-1'),
  turnAudio: (k, s) => k.turnAudio(s, 'turn-1'),
  turnAbandoned: (k, s) => k.turnAbandoned(s, 'turn-1'),
  memory: (k, s) => k.memory(s),
};
/** Keys of one API key id (its sessions' index): a tag of their own. */
const PER_KEY_ID = ['sessionIndex'];
/** Keys every session shares, or per worker queue / pod / job. */
const GLOBAL: Record<string, (k: VaultKeys) => string> = {
  identitySeed: (k) => k.identitySeed,
  identityVersion: (k) => k.identityVersion,
  turnDeadlines: (k) => k.turnDeadlines,
  replica: (k) => k.replica('orb-core-0'),
  orbFence: (k) => k.orbFence('orb-core-0'),
  rateLimit: (k) => k.rateLimit('dev'),
  jobs: (k) => k.jobs('cali'),
  coreJobs: (k) => k.coreJobs(0),
  dlq: (k) => k.dlq('cali'),
  done: (k) => k.done('job-1'),
  alive: (k) => k.alive('core:0'),
  models: (k) => k.models,
};

const SIDS = Array.from(
  { length: 200 },
  (_, i) => `${(0x10000000 + i * 7919).toString(16)}-1b2c-4d3e-8f40-${(i * 104729).toString(16).padStart(12, '0')}`,
);
const K = vaultKeys('');
const sessionKeys = (sid: string) => Object.values(PER_SESSION).map((b) => b(K, sid));
const slots = (keys: readonly string[]) => new Set(keys.map(keySlot));
/** The planned layout: the same builders, the session id as the hash tag. */
const tagged = (sid: string) => `{${sid}}`;

test('every key builder of services/acp/keys.ts is classified (per session, per key id, global)', () => {
  const members = Object.keys(K)
    .filter((m) => m !== 'prefix')
    .sort();
  expect(members).toEqual([...Object.keys(PER_SESSION), ...PER_KEY_ID, ...Object.keys(GLOBAL)].sort());
  // The gateway's session store builds the same session keys.
  const store = new SessionStore(undefined as unknown as Redis, '', 60);
  expect(store.key(SIDS[0])).toBe(K.session(SIDS[0]));
  expect(store.indexKey('dev')).toBe(K.sessionIndex('dev'));
});

test('the slot function agrees with a real redis-server in cluster mode', async () => {
  const server = await startRedisServer({
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--save', '', '--appendonly', 'no'],
  });
  const c = new Redis(server.url);
  try {
    const keys = [
      ...sessionKeys(SIDS[0]),
      ...sessionKeys(tagged(SIDS[0])),
      ...Object.values(GLOBAL).map((g) => g(K)),
      'a{}b',
      '{}{x}',
      'x{y}{z}',
      'x}{y}',
      '{x',
      'ключ{é}',
    ];
    for (const key of keys) expect([key, Number(await c.call('CLUSTER', 'KEYSLOT', key))]).toEqual([key, keySlot(key)]);
  } finally {
    c.disconnect();
    await server.stop();
  }
});

test("today: no key has a hash tag, so one session's keys are spread over several slots (not Cluster-ready)", () => {
  for (const sid of SIDS) {
    const keys = sessionKeys(sid);
    for (const key of keys) expect(key).not.toMatch(/\{[^}]+\}/);
    // 7 keys hashed on their whole name: in practice 7 different slots, never all in one.
    expect(slots(keys).size).toBeGreaterThan(1);
  }
});

test("planned: the session id as the tag puts all of a session's keys in one slot and keeps every ACL pattern matching", () => {
  const spread = new Set<number>();
  for (const sid of SIDS) {
    const keys = sessionKeys(tagged(sid));
    expect(slots(keys).size).toBe(1);
    spread.add(keySlot(keys[0]));
  }
  // Sessions still spread over the slots (the tag is the random id, not a constant).
  expect(spread.size).toBeGreaterThan(190);
  // Redis ACL globs have no brace syntax: `turn:*` matches `turn:{sid}:events` as it matches today's names.
  const glob = (p: string) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
  const patterns = (user: string) => [...aclRules(user as never, '').matchAll(/(?:^|\s|\()(?:%R|%W)?~(\S+)/g)].map((m) => glob(m[1]));
  for (const [name, build] of Object.entries(PER_SESSION)) {
    const today = build(K, SIDS[0]);
    const planned = build(K, tagged(SIDS[0]));
    const usersToday = VAULT_USERS.filter((u) => patterns(u).some((re) => re.test(today)));
    const usersPlanned = VAULT_USERS.filter((u) => patterns(u).some((re) => re.test(planned)));
    expect([name, usersPlanned]).toEqual([name, usersToday]);
    expect(usersToday.length).toBeGreaterThan(0);
  }
});

test('still cross-slot with the planned tag: the FCALLs and MULTI blocks that join session keys with global or per-pod keys', () => {
  const sid = tagged(SIDS[0]);
  const crossSlot: Record<string, string[]> = {
    // services/acp/turn.ts: seq, events, turn record, the deadline index, the first job streams.
    orb_turn_start: [K.turnSeq(sid), K.turnEvents(sid), K.turn(sid, 't1'), K.turnDeadlines, K.coreJobs(0), K.coreJobs(1), K.jobs('cali')],
    // services/acp/events.ts: every turn.end leaves the deadline index.
    orb_turn_end: [K.turnSeq(sid), K.turnEvents(sid), K.turn(sid, 't1'), K.turnDeadlines],
    // services/acp/events.ts with a job's dedupe record.
    'orb_append (deduped)': [K.turnSeq(sid), K.turnEvents(sid), K.done('job-1')],
    // services/acp/consumer.ts: the done mark and the ack on the job stream.
    orb_commit_job: [K.done('job-1'), K.jobs('cali')],
    // services/acp/events.ts appendAndCommit (a core's verdict and its commit).
    orb_append_commit: [K.turnSeq(sid), K.turnEvents(sid), K.done('job-1'), K.coreJobs(0)],
    orb_dead_letter: [K.jobs('cali'), K.dlq('cali')],
    // services/acp/bus.ts: jobs to several queues at once.
    orb_publish: [K.jobs('xtts'), K.jobs('cali')],
    // services/acp/liveness.ts: MULTI of the per-pod key and the queue's index.
    'liveness beat (MULTI)': [`${K.alive('core:0')}:core4-0`, K.alive('core:0')],
  };
  for (const [what, keys] of Object.entries(crossSlot)) expect([what, slots(keys).size > 1]).toEqual([what, true]);
  // The per-session part of them is one slot once tagged.
  expect(slots([K.turnSeq(sid), K.turnEvents(sid), K.turn(sid, 't1')]).size).toBe(1);
});
