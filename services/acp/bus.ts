/**
 * Job publishing on Redis Streams: one stream per worker role (`acp:jobs:<role>`) and one per
 * core ordinal (`acp:jobs:core:<n>`, so each core sees every turn), each read by the consumer
 * group `workers`. The group is created at id 0 by whoever comes first (publisher or consumer),
 * so a job published before any worker started is still delivered.
 */
import Redis from 'ioredis';
import { AcpEnvelope, AcpError, parseEnvelope } from './envelope';
import { ACP_CONSUMER_GROUP } from '../contract';
import { VaultKeys } from './keys';

/** The consumer group of every job stream (defined in the contract, which KEDA's triggers read too). */
export const ACP_GROUP = ACP_CONSUMER_GROUP;

export interface AcpBusOptions {
  /**
   * Most entries a job stream may hold; publishing beyond it fails with ACP_ERR_BACKLOG
   * (backpressure to the gateway) instead of trimming work nobody has acknowledged. @default 10000
   */
  readonly maxBacklog?: number;
}

// Refusing (not trimming) at the cap is what keeps MAXLEN-style bounds from dropping unacked jobs.
const PUBLISH_LUA = `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return redis.error_reply('ACP_ERR_BACKLOG') end
return redis.call('XADD', KEYS[1], '*', 'env', ARGV[2])
`;

export interface DeadLetter {
  readonly streamId: string;
  /** Id of the original job entry in its job stream. */
  readonly jobEntry: string;
  readonly jobId: string;
  readonly code: string;
  readonly error: string;
  readonly deliveries: number;
  readonly raw: string;
  readonly ts: number;
}

export class AcpBus {
  readonly maxBacklog: number;
  private readonly groups = new Set<string>();

  constructor(readonly redis: Redis, readonly keys: VaultKeys, opts: AcpBusOptions = {}) {
    this.maxBacklog = opts.maxBacklog ?? 10_000;
    if (!('acpPublish' in redis)) redis.defineCommand('acpPublish', { numberOfKeys: 1, lua: PUBLISH_LUA });
  }

  /**
   * Creates the stream and its group at id 0 when missing (idempotent, cached per process;
   * `force` skips the cache, e.g. after a NOGROUP because the stream was deleted).
   */
  async ensureGroup(queue: string, force = false): Promise<void> {
    const stream = this.keys.jobs(queue);
    if (this.groups.has(stream) && !force) return;
    try {
      await this.redis.xgroup('CREATE', stream, ACP_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    this.groups.add(stream);
  }

  /**
   * Publishes a job to `acp:jobs:<queue>` (`queue` is a role, or `core:<n>` for one core).
   * The envelope is validated first; returns the stream entry id.
   */
  async publish(queue: string, envelope: AcpEnvelope): Promise<string> {
    const env = parseEnvelope(envelope);
    await this.ensureGroup(queue);
    try {
      const cmd = (this.redis as unknown as { acpPublish: (k: string, max: number, env: string) => Promise<string> }).acpPublish;
      return await cmd.call(this.redis, this.keys.jobs(queue), this.maxBacklog, JSON.stringify(env));
    } catch (err) {
      if (String((err as Error).message).includes('ACP_ERR_BACKLOG')) {
        throw new AcpError('ACP_ERR_BACKLOG', `queue ${queue} holds ${this.maxBacklog} or more jobs`);
      }
      throw err;
    }
  }

  /** Publishes to every core ordinal 0..cores-1 (one envelope each, distinct ids). */
  async publishToCores(cores: number, make: (ordinal: number) => AcpEnvelope): Promise<string[]> {
    return Promise.all(Array.from({ length: cores }, (_, n) => this.publish(`core:${n}`, make(n))));
  }

  /** Raw publish without validation: only for tests and tools that must inject malformed input. */
  async publishRaw(queue: string, fields: Record<string, string>): Promise<string> {
    await this.ensureGroup(queue);
    return (await this.redis.xadd(this.keys.jobs(queue), '*', ...Object.entries(fields).flat())) as string;
  }

  /** Jobs waiting or in flight: entries not yet delivered plus delivered-but-unacknowledged. */
  async backlog(queue: string): Promise<{ pending: number; lag: number; length: number }> {
    const stream = this.keys.jobs(queue);
    const length = await this.redis.xlen(stream);
    const groups = (await this.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    for (const g of groups) {
      const f = pairs(g);
      if (f.name === ACP_GROUP) return { pending: Number(f.pending ?? 0), lag: Number(f.lag ?? 0), length };
    }
    return { pending: 0, lag: length, length };
  }

  async dlqSize(queue: string): Promise<number> {
    return this.redis.xlen(this.keys.dlq(queue));
  }

  async deadLetters(queue: string, count = 100): Promise<DeadLetter[]> {
    const raw = (await this.redis.xrange(this.keys.dlq(queue), '-', '+', 'COUNT', count)) as [string, string[]][];
    return raw.map(([id, fields]) => {
      const f = pairs(fields);
      return {
        streamId: id, jobEntry: String(f.entry ?? ''), jobId: String(f.job ?? ''), code: String(f.code ?? ''),
        error: String(f.error ?? ''), deliveries: Number(f.deliveries ?? 0), raw: String(f.raw ?? ''), ts: Number(f.ts ?? 0),
      };
    });
  }

  /**
   * Trims a job stream without losing unacknowledged work: everything older than both the
   * group's oldest pending entry and its last-delivered id has been acknowledged, so
   * `XTRIM MINID ~ <that floor>` removes only finished jobs (the `~` lets Redis drop whole
   * nodes, which can only keep more, never less). Returns the number of entries removed.
   */
  async trim(queue: string): Promise<number> {
    const stream = this.keys.jobs(queue);
    const groups = (await this.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    if (!groups.length) return 0; // nobody has read anything: everything is unacknowledged
    let floor: string | undefined;
    for (const g of groups) {
      const f = pairs(g);
      const name = String(f.name);
      const delivered = String(f['last-delivered-id'] ?? '0-0');
      let groupFloor = nextId(delivered);
      if (Number(f.pending ?? 0) > 0) {
        const summary = (await this.redis.xpending(stream, name)) as [number, string | null, string | null, unknown];
        if (summary[1] && cmpId(summary[1], groupFloor) < 0) groupFloor = summary[1];
      }
      if (!floor || cmpId(groupFloor, floor) < 0) floor = groupFloor;
    }
    if (!floor || floor === '0-1') return 0;
    return Number(await this.redis.xtrim(stream, 'MINID', '~', floor));
  }
}

function pairs(arr: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < arr.length; i += 2) out[String(arr[i])] = arr[i + 1];
  return out;
}

function parseId(id: string): [bigint, bigint] {
  const [ms, seq] = id.split('-');
  return [BigInt(ms), BigInt(seq ?? '0')];
}

/** Compares two stream ids. */
export function cmpId(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

function nextId(id: string): string {
  const [ms, seq] = parseId(id);
  return `${ms}-${seq + 1n}`;
}
