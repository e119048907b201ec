/**
 * Redis ACL users of the vault: one per component, each allowed only the commands its code
 * really sends and only the key families its role writes (docs/vault-keys.md). Derived from the
 * calls in services/ (see the comment on each list); a test on a real redis-server checks every
 * command of `COMMAND` against these lists, and runs the services under them.
 *
 * Passwords are never here: the vault's init container hashes them from Secret `vault-acl`
 * (`<user>-password`) into the ACL file.
 */

import { ACP_QUEUES, coreQueue, jobStreamKey, VAULT_USERS as CONTRACT_USERS, type VaultUser } from '../services/contract';

export type { VaultUser };
/** The ACL users (the contract's list). */
export const VAULT_USERS: readonly VaultUser[] = CONTRACT_USERS;

/** How a scope may touch a key pattern: Redis 7 `%R~` (read), `%W~` (write) or `~` (both). */
export type KeyAccess = 'read' | 'write' | 'readwrite';

export interface KeyGrant {
  /** Key glob without the key prefix, e.g. `turn:*` or `acp:jobs:cali`. */
  readonly pattern: string;
  readonly access: KeyAccess;
}

/**
 * One permission set: the root of a user, or a Redis 7 selector `( … )`. A command is allowed
 * when one scope allows the command AND every key it names, so a selector can grant a few
 * commands on a few extra keys without widening the root.
 */
export interface AclScope {
  readonly keys: readonly KeyGrant[];
  /** Lower-case command names; `container|sub` for one subcommand (e.g. `xgroup|create`). */
  readonly commands: readonly string[];
}

export interface VaultUserGrant {
  /** What the user is for, in a line (printed by the ACL test next to its counts). */
  readonly purpose: string;
  readonly root: AclScope;
  readonly selectors: readonly AclScope[];
}

const rw = (...patterns: string[]): KeyGrant[] => patterns.map((pattern) => ({ pattern, access: 'readwrite' }));
const ro = (...patterns: string[]): KeyGrant[] => patterns.map((pattern) => ({ pattern, access: 'read' }));

// ---- command groups, each named after the code that sends it ---------------------------------

/**
 * Every ioredis connection: AUTH (always allowed), the ready check's INFO, CLIENT SETNAME of
 * `connectionName`, PING (the gateway's /readyz), QUIT on close.
 */
const CONNECTION = ['ping', 'info', 'quit', 'client|setname'];
/**
 * Server-side logic: the `orb` FUNCTION library (loaded by its own bootstrap user). FCALL runs
 * each inner command under the caller's ACL, so those commands are listed below as well.
 * Never EVAL/EVALSHA/SCRIPT (cache lost on restart and failover) nor FUNCTION LOAD/FLUSH/DELETE.
 */
const FUNCTIONS = ['fcall', 'fcall_ro'];
/** MULTI/EXEC blocks (session create/touch, heartbeats, tickets, audio append, seed). */
const TRANSACTION = ['multi', 'exec'];
/**
 * Turn event streams (services/acp/events.ts): the append step is HGET/INCR/XADD/EXPIRE/HSET
 * (dedupe mark in `acp:done:*`); readers use XRANGE, XREAD (BLOCK, own connection) and GET seq.
 */
const EVENT_APPEND = ['hget', 'incr', 'xadd', 'expire', 'hset'];
const EVENT_READ = ['xrange', 'xread', 'get'];
/**
 * A worker on its own queue (services/acp/consumer.ts + bus.ts): group creation, reads, reclaim,
 * acknowledgement, dead-lettering (XADD to its DLQ), the dedupe record, the trim, and the
 * backlog/DLQ gauges and KEDA's lag trigger (XINFO GROUPS, XLEN).
 */
const CONSUMER = [
  'xgroup|create',
  'xreadgroup',
  'xautoclaim',
  'xclaim',
  'xpending',
  'xack',
  'xadd',
  'xtrim',
  'xinfo|groups',
  'xlen',
  'xrange',
  'hmget',
  'hset',
  'expire',
];
/** Publishing a job to another role's queue (services/acp/bus.ts publish: XLEN cap, XADD; group at 0). */
const PUBLISH = ['xadd', 'xlen', 'xgroup|create'];
/** What a worker has loaded, announced in `acp:models` (services/acp/models.ts). */
const MODEL_ANNOUNCE = ['hset', 'hdel'];
/** A REST client that left: workers check the mark and delete what they wrote (services/acp/abandon.ts). */
const ABANDON = ['exists', 'del'];
/**
 * A turn's one `turn.end` (orb_turn_end: the turn record's end_seq, and the turn leaves
 * `turn:deadlines`), written by whichever worker ends the turn.
 */
const TURN_END = ['zrem'];
/**
 * Worker liveness (services/acp/liveness.ts): each consumer beats `acp:alive:<queue>:<pod>` (SET
 * PX) and its expiry into the `acp:alive:<queue>` index (ZADD, EXPIRE a day), in MULTI; on stop it deletes its
 * own key. A selector, so DEL reaches nothing else.
 */
const HEARTBEAT = ['multi', 'exec', 'set', 'zadd', 'expire', 'del'];

/** The job queues of each role, and its dead-letter stream. */
const JOBS = {
  whisperx: jobStreamKey(ACP_QUEUES.whisperx),
  xtts: jobStreamKey(ACP_QUEUES.xtts),
  // One user for all five ordinals: the StatefulSet's pods share one pod template, so they
  // cannot each hold a different Secret key.
  core: jobStreamKey(coreQueue('*')),
  cali: jobStreamKey(ACP_QUEUES.cali),
} as const;
const dlqOf = (jobs: string): string => jobs.replace(/^acp:jobs:/, 'acp:dlq:');
const QUEUE: Record<keyof typeof JOBS, readonly string[]> = {
  whisperx: [JOBS.whisperx, dlqOf(JOBS.whisperx)],
  xtts: [JOBS.xtts, dlqOf(JOBS.xtts)],
  core: [JOBS.core, dlqOf(JOBS.core)],
  cali: [JOBS.cali, dlqOf(JOBS.cali)],
};
/** The liveness index and per-pod keys of each role's queues. */
const alive = (queue: string): string => `acp:alive:${queue}`;
const ALIVE: Record<keyof typeof JOBS, readonly string[]> = {
  whisperx: [alive(ACP_QUEUES.whisperx), alive(`${ACP_QUEUES.whisperx}:*`)],
  xtts: [alive(ACP_QUEUES.xtts), alive(`${ACP_QUEUES.xtts}:*`)],
  core: [alive(coreQueue('*'))],
  cali: [alive(ACP_QUEUES.cali), alive(`${ACP_QUEUES.cali}:*`)],
};

/**
 * A worker role: its queue and DLQ, dedupe records, the turn streams it appends to (root); DEL
 * and EXISTS only on `turn:*` (a selector), so DEL never reaches a queue.
 */
function worker(
  role: keyof typeof QUEUE,
  extra: { keys?: KeyGrant[]; commands?: string[]; publishTo?: Array<keyof typeof JOBS>; models?: boolean; abandon?: boolean },
): Omit<VaultUserGrant, 'purpose'> {
  const own = [...rw(...QUEUE[role], 'acp:done:*', 'turn:*'), ...(extra.models ? rw('acp:models') : []), ...(extra.keys ?? [])];
  const commands = unique([
    ...CONNECTION,
    ...FUNCTIONS,
    ...CONSUMER,
    ...EVENT_APPEND,
    ...TURN_END,
    ...(extra.models ? MODEL_ANNOUNCE : []),
    ...(extra.commands ?? []),
  ]);
  const selectors: AclScope[] = [{ keys: rw(...ALIVE[role]), commands: HEARTBEAT }];
  if (extra.abandon) selectors.push({ keys: rw('turn:*'), commands: ABANDON });
  if (extra.publishTo?.length) selectors.push(publishScope(own, extra.publishTo));
  return { root: { keys: own, commands }, selectors };
}

/**
 * Publishing to other roles' queues: only PUBLISH's commands (and FCALL) there. The scope also
 * holds the publisher's own writable families, because one FCALL that writes a turn event and
 * queues the next job names keys of both, and all keys of a call must pass one scope.
 */
function publishScope(own: readonly KeyGrant[], to: ReadonlyArray<keyof typeof JOBS>): AclScope {
  return { keys: [...own.filter((k) => k.access !== 'read'), ...rw(...to.map((r) => JOBS[r]))], commands: [...FUNCTIONS, ...PUBLISH] };
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

const ORB_OWN: KeyGrant[] = [...rw('session:*', 'turn:*', 'orb:*', 'acp:models'), ...ro('identity:*')];

export const VAULT_GRANTS: Readonly<Record<VaultUser, VaultUserGrant>> = {
  orb: {
    purpose:
      'orb-core gateway: sessions, turn streams and audio, replica heartbeats, socket leases, tickets, rate limits; queues jobs for every worker role',
    root: {
      keys: ORB_OWN,
      commands: unique([
        ...CONNECTION,
        ...FUNCTIONS,
        ...TRANSACTION,
        ...EVENT_APPEND,
        ...EVENT_READ,
        // session-store.ts, socket.ts (open utterance)
        'hset',
        'hgetall',
        'hget',
        'hdel',
        'sadd',
        'expire',
        // turns.ts / openai-audio.ts: utterance audio; abandon.ts: the abandoned mark (SET PX)
        'append',
        'strlen',
        'set',
        'del',
        // replicas.ts heartbeats (SET PX + index zset), tickets.ts (SET PX, GET+DEL in MULTI)
        'get',
        'mget',
        'zadd',
        'zrem',
        'zremrangebyscore',
        'zrangebyscore',
        // live-sessions.ts socket leases; @fastify/rate-limit's store (INCR, PEXPIRE, PTTL)
        'zcard',
        'pexpireat',
        'pexpire',
        'pttl',
        // models.ts: GET /v1/models reads acp:models and drops expired entries
        'hgetall',
        'hdel',
        // acp/replication.ts: the delivery fence (SET PX of orb:fence:{pod}, then WAIT)
        'wait',
      ]),
    },
    selectors: [publishScope(ORB_OWN, ['whisperx', 'xtts', 'core', 'cali'])],
  },
  whisperx: {
    purpose: 'whisperx (ASR): its queue, transcript events, reads utterance audio; queues verdict jobs for the cores and CALI',
    ...worker('whisperx', { commands: ['get'], publishTo: ['core', 'cali'], models: true, abandon: true }),
  },
  xtts: {
    purpose: 'xtts (TTS): its queue, audio events',
    ...worker('xtts', { models: true, abandon: true }),
  },
  core: {
    purpose: 'core4-0…4 (verdict cores): their per-ordinal queues, verdict events',
    ...worker('core', {}),
  },
  cali: {
    purpose:
      "CALI: its queue, reply events, session memory; reads verdicts, the cores' liveness and the identity; moves a spoken turn's deadline; queues speech for xtts",
    // zcount/zcard/zrange: the cores' liveness index (no_quorum); zadd: orb_turn_extend moves the turn's deadline.
    ...worker('cali', {
      keys: [...rw('memory:*'), ...ro('identity:*', 'acp:alive:core:*')],
      commands: [...EVENT_READ, 'hgetall', 'zcount', 'zcard', 'zrange', 'zadd'],
      publishTo: ['xtts'],
    }),
  },
  seed: {
    purpose: 'seed-vault Job: writes the identity document (SET in MULTI), reads it back',
    root: { keys: rw('identity:*'), commands: [...CONNECTION, ...TRANSACTION, 'set', 'get'] },
    selectors: [],
  },
  functions: {
    purpose:
      "seed-vault Job's init container `functions`: loads the `orb` FUNCTION library (FUNCTION LOAD REPLACE) and reads its version back; no keys",
    root: { keys: [], commands: [...CONNECTION, 'function|load', 'function|list', 'fcall_ro'] },
    selectors: [],
  },
  backup: {
    purpose: 'vault-backup CronJob and the vault readiness probe: BGSAVE, INFO persistence, `redis-cli --rdb` (SYNC); no key commands',
    root: { keys: [], commands: ['ping', 'info', 'bgsave', 'sync', 'replconf'] },
    selectors: [],
  },
};

/** Every command `user` may run (root and selectors), lower case. */
export function allowedCommands(user: VaultUser): string[] {
  const g = VAULT_GRANTS[user];
  return unique([g.root, ...g.selectors].flatMap((s) => s.commands)).sort();
}

function keyRule(k: KeyGrant, keyPrefix: string): string {
  const sigil = k.access === 'read' ? '%R~' : k.access === 'write' ? '%W~' : '~';
  return `${sigil}${keyPrefix}${k.pattern}`;
}

/** The ACL rules of `user` without its password (`user <name> on ... ` minus `#hash`). */
export function aclRules(user: VaultUser, keyPrefix = ''): string {
  const g = VAULT_GRANTS[user];
  const root = [
    'resetkeys',
    ...g.root.keys.map((k) => keyRule(k, keyPrefix)),
    // No Pub/Sub anywhere: nothing in services/ publishes or subscribes.
    'resetchannels',
    '-@all',
    ...g.root.commands.map((c) => `+${c}`),
  ];
  const selectors = g.selectors.map(
    (s) => `(${[...s.keys.map((k) => keyRule(k, keyPrefix)), ...s.commands.map((c) => `+${c}`)].join(' ')})`,
  );
  return [...root, ...selectors].join(' ');
}

/**
 * The `default` user: off, so no client can log in as it (unauthenticated connections get
 * NOAUTH). It still holds +@write on every key because Redis replays each MULTI/EXEC block of the
 * AOF under the default user's ACL at start-up and silently drops the blocks it refuses
 * (redis/redis#14541: seen here on 7.0, reported on 7.2; the fix, #14545, is from late 2025, after
 * the 7.4.1 this project pins). Services write sessions, heartbeats and tickets in
 * MULTI, and FCALL/EVAL effects are logged as MULTI/EXEC too: with a `-@all` default user they
 * all vanished at the first vault restart (the dev stack's "missing session").
 */
export const DEFAULT_USER_RULES = 'off resetkeys ~* resetchannels -@all +@write';

/**
 * POSIX sh run by the vault's init container: reads each `<user>.rules` and the matching
 * `<user>-password` Secret key, and writes `user <name> on #<sha256> <rules>` lines, so the
 * ACL file never holds a plaintext password and no password is ever in a manifest.
 */
export const ASSEMBLE_ACL_SCRIPT = `#!/bin/sh
# usage: assemble-acl.sh RULES_DIR SECRETS_DIR OUT_FILE
set -eu
rules_dir=$1; secrets_dir=$2; out=$3
tmp="$out.tmp"
umask 077
echo "user default ${DEFAULT_USER_RULES}" > "$tmp"
for rules in "$rules_dir"/*.rules; do
  user=$(basename "$rules" .rules)
  pw_file="$secrets_dir/$user-password"
  if [ ! -s "$pw_file" ]; then
    echo "assemble-acl: Secret key $user-password is missing or empty" >&2
    exit 1
  fi
  hash=$(tr -d '\\n' < "$pw_file" | sha256sum | cut -d' ' -f1)
  echo "user $user reset on #$hash $(cat "$rules")" >> "$tmp"
done
mv "$tmp" "$out"
echo "assemble-acl: wrote $(wc -l < "$out") users to $out"
`;
