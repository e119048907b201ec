/**
 * Job publishing on Redis Streams: one stream per worker role (`acp:jobs:<role>`) and one per
 * core ordinal (`acp:jobs:core:<n>`, so each core sees every turn), each read by the consumer
 * group `workers`. The group is created at id 0 by whoever comes first (publisher or consumer),
 * so a job published before any worker started is still delivered.
 */
import Redis from 'ioredis';
import { AcpEnvelope, AcpError, parseEnvelope } from './envelope';
import { ACP_CONSUMER_GROUP, coreQueue } from '../contract';
import { VaultKeys } from './keys';
import { fcall } from './functions';

/** The consumer group of every job stream (defined in the contract, which KEDA's triggers read too). */
export const ACP_GROUP = ACP_CONSUMER_GROUP;

export interface AcpBusOptions {
  /**
   * Most entries a job stream may hold; publishing beyond it fails with ACP_ERR_BACKLOG
   * (backpressure to the gateway) instead of trimming work nobody has acknowledged. @default 10000
   */
  readonly maxBacklog?: number;
}

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

  constructor(
    readonly redis: Redis,
    readonly keys: VaultKeys,
    opts: AcpBusOptions = {},
  ) {
    this.maxBacklog = opts.maxBacklog ?? 10_000;
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
   * The envelope is validated first; returns the stream entry id. Refusing (not trimming) at the
   * cap is what keeps MAXLEN-style bounds from dropping unacknowledged jobs.
   */
  async publish(queue: string, envelope: AcpEnvelope): Promise<string> {
    return (await this.publishMany([{ queue, envelope }]))[0];
  }

  /** Publishes jobs to several queues in one atomic step (FCALL orb_publish): all or, at any cap, none. */
  async publishMany(jobs: readonly { queue: string; envelope: AcpEnvelope }[]): Promise<string[]> {
    const envs = jobs.map((j) => JSON.stringify(parseEnvelope(j.envelope)));
    await Promise.all(jobs.map((j) => this.ensureGroup(j.queue)));
    try {
      return await fcall<string[]>(
        this.redis,
        'orb_publish',
        jobs.map((j) => this.keys.jobs(j.queue)),
        [this.maxBacklog, ...envs],
      );
    } catch (err) {
      throw asBacklogError(err, this.maxBacklog) ?? err;
    }
  }

  /** Publishes to every core ordinal 0..cores-1 (one envelope each, distinct ids), in one step. */
  async publishToCores(cores: number, make: (ordinal: number) => AcpEnvelope): Promise<string[]> {
    return this.publishMany(Array.from({ length: cores }, (_, n) => ({ queue: coreQueue(n), envelope: make(n) })));
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
        streamId: id,
        jobEntry: String(f.entry ?? ''),
        jobId: String(f.job ?? ''),
        code: String(f.code ?? ''),
        error: String(f.error ?? ''),
        deliveries: Number(f.deliveries ?? 0),
        raw: String(f.raw ?? ''),
        ts: Number(f.ts ?? 0),
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

/** The AcpError for a function's `ACP_ERR_BACKLOG <stream>` refusal, or undefined for any other error. */
export function asBacklogError(err: unknown, max: number): AcpError | undefined {
  const m = /ACP_ERR_BACKLOG (\S+)/.exec(String((err as Error | undefined)?.message ?? ''));
  return m ? new AcpError('ACP_ERR_BACKLOG', `${m[1]} holds ${max} or more jobs`) : undefined;
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
