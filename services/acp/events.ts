/**
 * The per-session turn event stream `turn:{sid}:events`: every event a client sees (transcript,
 * verdict, reply, audio, errors, turn.end) with a per-session monotonic `seq`. The stream entry
 * id IS the seq (`<seq>-0`), so "events after seq N" is a plain XREAD from `N-0`: a client that
 * reconnects to any gateway replica resumes from its last seq.
 */
import Redis from 'ioredis';
import { VaultKeys } from './keys';

/** Event types on the stream; docs/acp.md describes each one's `data`. */
export const TURN_EVENT_TYPES = [
  'turn.start', 'transcript', 'verdict', 'reply', 'audio', 'turn.no_quorum', 'turn.error', 'turn.end',
] as const;
export type TurnEventType = (typeof TURN_EVENT_TYPES)[number];

export interface TurnEvent<D = unknown> {
  readonly seq: number;
  readonly type: TurnEventType | string;
  readonly session: string;
  readonly turn: string;
  /** Producer's wall clock, epoch ms. */
  readonly ts: number;
  /** Id of the ACP job that produced it ('' for the gateway's own events). */
  readonly job: string;
  readonly data: D;
}

export interface AppendInput {
  readonly type: TurnEventType | string;
  readonly turn: string;
  readonly data?: unknown;
  readonly job?: string;
}

export interface AppendOptions {
  /** Makes the append idempotent: the same (done key, field) never appends twice. */
  readonly dedupe?: { readonly key: string; readonly field: string; readonly ttlS: number };
}

export interface AppendResult {
  readonly seq: number;
  /** True when the dedupe field existed: nothing was appended, `seq` is the original one. */
  readonly duplicate: boolean;
}

export interface TurnEventStreamOptions {
  /** Approximate cap of events kept per session (older ones are trimmed). @default 2000 */
  readonly maxLen?: number;
  /** Seconds a session's events and seq survive after its last event. @default 86400 */
  readonly retentionS?: number;
  /** BLOCK of each blocking read: finite so a shutdown is never stuck. @default 1000 */
  readonly blockMs?: number;
}

// INCR + XADD in one script so the seq is monotonic and gap-free per session even with many
// writers (gateway replicas, cores, CALI, xtts), and the dedupe mark is set in the same step.
const APPEND_LUA = `
if #KEYS == 3 then
  local prev = redis.call('HGET', KEYS[3], ARGV[7])
  if prev then return {tonumber(prev), 1} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], seq .. '-0',
  'type', ARGV[3], 'turn', ARGV[4], 'data', ARGV[5], 'ts', ARGV[6], 'job', ARGV[9])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if #KEYS == 3 then
  redis.call('HSET', KEYS[3], ARGV[7], seq)
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
return {seq, 0}
`;

/** A stream entry as XRANGE/XREAD return it. */
export type RawEventEntry = [id: string, fields: string[]];

/** Reads one entry of a session's event stream (the field layout `append` writes) back as a TurnEvent. */
export function toEvent(session: string, [id, fields]: RawEventEntry): TurnEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  let data: unknown = null;
  try {
    data = f.data ? JSON.parse(f.data) : null;
  } catch {
    data = f.data;
  }
  return { seq: Number(id.split('-')[0]), type: f.type ?? '', session, turn: f.turn ?? '', ts: Number(f.ts ?? 0), job: f.job ?? '', data };
}

export class TurnEventStream {
  private readonly maxLen: number;
  private readonly retentionS: number;
  private readonly blockMs: number;
  private readonly idle: Redis[] = [];
  private readonly busy = new Set<Redis>();
  private closed = false;

  constructor(private readonly redis: Redis, private readonly keys: VaultKeys, opts: TurnEventStreamOptions = {}) {
    this.maxLen = opts.maxLen ?? 2000;
    this.retentionS = opts.retentionS ?? 86_400;
    this.blockMs = opts.blockMs ?? 1000;
    if (!('acpAppendEvent' in redis)) redis.defineCommand('acpAppendEvent', { lua: APPEND_LUA });
  }

  /** Appends one event; its seq is assigned atomically. */
  async append(session: string, ev: AppendInput, opts: AppendOptions = {}): Promise<AppendResult> {
    const keys = [this.keys.turnSeq(session), this.keys.turnEvents(session)];
    if (opts.dedupe) keys.push(opts.dedupe.key);
    const args = [
      this.maxLen, this.retentionS, ev.type, ev.turn, JSON.stringify(ev.data ?? null), Date.now(),
      opts.dedupe?.field ?? '', opts.dedupe?.ttlS ?? 0, ev.job ?? '',
    ];
    const cmd = (this.redis as unknown as { acpAppendEvent: (n: number, ...a: unknown[]) => Promise<[number, number]> }).acpAppendEvent;
    const [seq, dup] = await cmd.call(this.redis, keys.length, ...keys, ...args);
    return { seq: Number(seq), duplicate: Number(dup) === 1 };
  }

  /** Events with seq > afterSeq, oldest first (non-blocking). */
  async read(session: string, afterSeq = 0, count = 1000): Promise<TurnEvent[]> {
    const raw = (await this.redis.xrange(this.keys.turnEvents(session), `(${afterSeq}-0`, '+', 'COUNT', count)) as RawEventEntry[];
    return raw.map((e) => toEvent(session, e));
  }

  /** The session's last assigned seq (0 when none). */
  async lastSeq(session: string): Promise<number> {
    return Number((await this.redis.get(this.keys.turnSeq(session))) ?? 0);
  }

  /**
   * Follows the session's events after `afterSeq` until `signal` aborts, using a blocking
   * connection of its own (a duplicate, finite BLOCK) so it never stalls the shared client.
   */
  async *tail(session: string, afterSeq = 0, opts: { signal?: AbortSignal; blockMs?: number } = {}): AsyncGenerator<TurnEvent> {
    const conn = this.acquire();
    const onAbort = () => conn.disconnect(); // interrupts a pending XREAD at once
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let last = afterSeq;
    let healthy = true;
    try {
      while (!opts.signal?.aborted && !this.closed) {
        let res: [string, RawEventEntry[]][] | null;
        try {
          res = (await conn.xread('COUNT', 500, 'BLOCK', opts.blockMs ?? this.blockMs, 'STREAMS', this.keys.turnEvents(session), `${last}-0`)) as
            [string, RawEventEntry[]][] | null;
        } catch (err) {
          healthy = false;
          if (opts.signal?.aborted || this.closed) return;
          throw err;
        }
        for (const entry of res?.[0]?.[1] ?? []) {
          const ev = toEvent(session, entry);
          last = ev.seq;
          yield ev;
        }
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.release(conn, healthy && !opts.signal?.aborted);
    }
  }

  /**
   * Waits for the first event after `afterSeq` matching `predicate`, or undefined at the timeout.
   * `collect` sees every event read on the way (e.g. CALI gathering verdicts).
   */
  async waitFor(session: string, afterSeq: number, predicate: (ev: TurnEvent) => boolean,
    opts: { timeoutMs: number; signal?: AbortSignal }): Promise<TurnEvent | undefined> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(0, opts.timeoutMs));
    timer.unref();
    const outer = () => ac.abort();
    opts.signal?.addEventListener('abort', outer, { once: true });
    try {
      for await (const ev of this.tail(session, afterSeq, { signal: ac.signal, blockMs: Math.min(this.blockMs, Math.max(1, opts.timeoutMs)) })) {
        if (predicate(ev)) return ev;
      }
      return undefined;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', outer);
      ac.abort();
    }
  }

  /** Closes the pooled blocking connections (the shared client stays the caller's). */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.idle, ...this.busy]) c.disconnect();
    this.idle.length = 0;
    this.busy.clear();
  }

  private acquire(): Redis {
    let conn = this.idle.pop();
    if (!conn) {
      conn = this.redis.duplicate({ maxRetriesPerRequest: null, enableAutoPipelining: false, disconnectTimeout: 100 });
      conn.on('error', () => undefined); // surfaced by the rejected XREAD instead
    }
    this.busy.add(conn);
    return conn;
  }

  private release(conn: Redis, reusable: boolean): void {
    this.busy.delete(conn);
    if (reusable && !this.closed && this.idle.length < 8 && conn.status === 'ready') this.idle.push(conn);
    else conn.disconnect();
  }
}
