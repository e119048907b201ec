/**
 * Every vault key name, built in one place (docs/vault-keys.md lists the same families; keep
 * them in sync). Redis ACL users are granted these families' patterns, so a key outside them
 * would be refused in the cluster.
 */
import { coreQueue, jobStreamKey } from '../contract';

export interface VaultKeys {
  readonly prefix: string;
  // identity:* — seed vault, written only by the seed Job
  readonly identitySeed: string;
  readonly identityVersion: string;
  // session:*
  session(sid: string): string;
  sessionIndex(keyId: string): string;
  // turn:*
  turnEvents(sid: string): string;
  turnSeq(sid: string): string;
  /** Turn record (hash: start_seq, deadline_ms, end_seq, outcome), written by orb_turn_start / orb_turn_end. */
  turn(sid: string, turnId: string): string;
  /** Deadline index of open turns (zset, score = deadline ms, member `<sid> <turn>`): the sweeper's work list. */
  readonly turnDeadlines: string;
  turnAudio(sid: string, turnId: string): string;
  /** Set by the gateway when the client of a one-shot REST job left before its last result (see abandon.ts). */
  turnAbandoned(sid: string, turnId: string): string;
  // memory:*
  memory(sid: string): string;
  // orb:*
  replica(pod: string): string;
  /** The delivery fence's write (services/acp/replication.ts): one per gateway replica, PX 60 s. */
  orbFence(pod: string): string;
  rateLimit(suffix: string): string;
  // acp:*
  /** Job stream of a worker role, e.g. `acp:jobs:cali`; `jobs('core:3')` is core ordinal 3's. */
  jobs(queue: string): string;
  coreJobs(ordinal: number): string;
  dlq(queue: string): string;
  /** Dedupe record of a job (hash: one field per emitted result, `done` when committed). */
  done(jobId: string): string;
  /** Liveness of a queue's consumers (zset: member pod, score = heartbeat expiry ms), e.g. `acp:alive:core:3`. */
  alive(queue: string): string;
  /** What each worker has loaded (hash: field `{role}:{consumer}`, value JSON with an expiry): feeds GET /v1/models. */
  readonly models: string;
}

export function vaultKeys(prefix = ''): VaultKeys {
  const p = prefix;
  return {
    prefix: p,
    identitySeed: `${p}identity:seed`,
    identityVersion: `${p}identity:version`,
    session: (sid) => `${p}session:${sid}`,
    sessionIndex: (keyId) => `${p}session:index:${keyId}`,
    turnEvents: (sid) => `${p}turn:${sid}:events`,
    turnSeq: (sid) => `${p}turn:${sid}:seq`,
    turn: (sid, turnId) => `${p}turn:${sid}:${turnId}`,
    turnDeadlines: `${p}turn:deadlines`,
    turnAudio: (sid, turnId) => `${p}turn:${sid}:${turnId}:audio`,
    turnAbandoned: (sid, turnId) => `${p}turn:${sid}:${turnId}:abandoned`,
    memory: (sid) => `${p}memory:${sid}`,
    replica: (pod) => `${p}orb:replica:${pod}`,
    orbFence: (pod) => `${p}orb:fence:${pod}`,
    rateLimit: (suffix) => `${p}orb:ratelimit:${suffix}`,
    jobs: (queue) => jobStreamKey(queue, p),
    coreJobs: (ordinal) => jobStreamKey(coreQueue(ordinal), p),
    dlq: (queue) => `${p}acp:dlq:${queue}`,
    done: (jobId) => `${p}acp:done:${jobId}`,
    alive: (queue) => `${p}acp:alive:${queue}`,
    models: `${p}acp:models`,
  };
}
