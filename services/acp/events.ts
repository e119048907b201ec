/**
 * The per-session turn event stream `turn:{sid}:events`: every event a client sees (transcript,
 * verdict, reply, audio, errors, turn.end) with a per-session monotonic `seq`. The stream entry
 * id IS the seq (`<seq>-0`), so "events after seq N" is a plain XREAD from `N-0`: a client that
 * reconnects to any gateway replica resumes from its last seq.
 */
import Redis from 'ioredis';
import { VaultKeys } from './keys';
import { fcall } from './functions';
import { boundedRead } from './blocking';
import type { DeliveryFence } from './replication';

/** Event types on the stream; docs/acp.md describes each one's `data`. */
export const TURN_EVENT_TYPES = [
  'turn.start',
  'transcript',
  'verdict',
  'reply',
  'audio',
  'turn.no_quorum',
  'turn.error',
  'turn.end',
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
  /**
   * Delivery after replication (services/acp/replication.ts): `read`, `tail` and `waitFor` return
   * only events a replica has acknowledged. The gateway sets it; workers' own reads need not.
   * @default - none: events are returned as soon as the primary has them
   */
  readonly fence?: DeliveryFence;
}

/** Member of the turn deadline index (`turn:deadlines`) for one turn. */
export function deadlineMember(session: string, turn: string): string {
  return `${session} ${turn}`;
}

/** Inverse of deadlineMember. */
export function parseDeadlineMember(member: string): { session: string; turn: string } | undefined {
  const i = member.indexOf(' ');
  return i > 0 ? { session: member.slice(0, i), turn: member.slice(i + 1) } : undefined;
}

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
  private readonly fence: DeliveryFence | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: VaultKeys,
    opts: TurnEventStreamOptions = {},
  ) {
    this.fence = opts.fence?.enabled ? opts.fence : undefined;
    this.maxLen = opts.maxLen ?? 2000;
    this.retentionS = opts.retentionS ?? 86_400;
    this.blockMs = opts.blockMs ?? 1000;
  }

  /**
   * Appends one event; its seq is assigned atomically (FCALL orb_append). A `turn.end` goes through
   * orb_turn_end instead: only the first one of a turn is written, a later one returns the first's
   * seq with `duplicate: true`.
   */
  async append(session: string, ev: AppendInput, opts: AppendOptions = {}): Promise<AppendResult> {
    if (ev.type === 'turn.end') return this.endTurn(session, ev, opts);
    const keys = [this.keys.turnSeq(session), this.keys.turnEvents(session)];
    if (opts.dedupe) keys.push(opts.dedupe.key);
    const [seq, dup] = await fcall<[number, number]>(this.redis, 'orb_append', keys, this.appendArgs(ev, opts.dedupe));
    return { seq: Number(seq), duplicate: Number(dup) === 1 };
  }

  /** orb_append's ARGV (orb_append_commit's first nine): maxlen, retention, type, turn, data, ts, dedupe field and ttl, job. */
  private appendArgs(ev: AppendInput, dedupe: AppendOptions['dedupe']): (string | number)[] {
    return [
      this.maxLen,
      this.retentionS,
      ev.type,
      ev.turn,
      JSON.stringify(ev.data ?? null),
      Date.now(),
      dedupe?.field ?? '',
      dedupe?.ttlS ?? 0,
      ev.job ?? '',
    ];
  }

  /**
   * `append` of a job's last event and the job's commit (done mark + XACK of `entry` in `stream`)
   * in one FCALL (orb_append_commit): one round trip where a worker would make two. Not for
   * `turn.end` (use `append`, then commit).
   */
  async appendAndCommit(
    session: string,
    ev: AppendInput,
    dedupe: NonNullable<AppendOptions['dedupe']>,
    commit: { readonly stream: string; readonly entry: string; readonly mark: string; readonly group: string },
  ): Promise<AppendResult> {
    if (ev.type === 'turn.end') throw new Error('appendAndCommit cannot end a turn: append turn.end, then commit');
    const keys = [this.keys.turnSeq(session), this.keys.turnEvents(session), dedupe.key, commit.stream];
    const args = [...this.appendArgs(ev, dedupe), commit.entry, commit.mark, dedupe.ttlS, commit.group];
    const [seq, dup] = await fcall<[number, number]>(this.redis, 'orb_append_commit', keys, args);
    return { seq: Number(seq), duplicate: Number(dup) === 1 };
  }

  /**
   * Ends a turn exactly once (orb_turn_end): `turn.end` with `data.outcome`. `onlyIfStarted` is the
   * sweeper's: a turn whose record has expired is just dropped from the deadline index (seq 0).
   */
  async endTurn(
    session: string,
    ev: Omit<AppendInput, 'type'>,
    opts: AppendOptions & { onlyIfStarted?: boolean } = {},
  ): Promise<AppendResult> {
    const keys = [this.keys.turnSeq(session), this.keys.turnEvents(session), this.keys.turn(session, ev.turn), this.keys.turnDeadlines];
    if (opts.dedupe) keys.push(opts.dedupe.key);
    const outcome = String((ev.data as { outcome?: unknown } | null | undefined)?.outcome ?? 'ok');
    const args = [
      this.maxLen,
      this.retentionS,
      ev.turn,
      JSON.stringify(ev.data ?? { outcome }),
      Date.now(),
      opts.dedupe?.field ?? '',
      opts.dedupe?.ttlS ?? 0,
      ev.job ?? '',
      deadlineMember(session, ev.turn),
      outcome,
      this.retentionS,
      opts.onlyIfStarted ? '1' : '0',
    ];
    const [seq, dup] = await fcall<[number, number]>(this.redis, 'orb_turn_end', keys, args);
    return { seq: Number(seq), duplicate: Number(dup) === 1 };
  }

  /** Moves an open turn's deadline later (never earlier), e.g. for the spoken reply's own budget. */
  async extendTurn(session: string, turn: string, deadlineMs: number): Promise<boolean> {
    const r = await fcall<number>(
      this.redis,
      'orb_turn_extend',
      [this.keys.turn(session, turn), this.keys.turnDeadlines],
      [deadlineMember(session, turn), deadlineMs],
    );
    return Number(r) === 1;
  }

  /** Stream retention in seconds (also the life of a turn record). */
  get retention(): number {
    return this.retentionS;
  }

  /** The approximate per-session cap of the stream. */
  get maxLength(): number {
    return this.maxLen;
  }

  /**
   * Events with seq > afterSeq, oldest first (non-blocking). With a delivery fence the read and
   * its fence run on a pooled connection of their own (WAIT must not block the shared client) and
   * a ReplicationLagError means: not yet deliverable, ask again.
   */
  async read(session: string, afterSeq = 0, count = 1000): Promise<TurnEvent[]> {
    const range = (c: Redis) => c.xrange(this.keys.turnEvents(session), `(${afterSeq}-0`, '+', 'COUNT', count) as Promise<RawEventEntry[]>;
    const fence = this.fence;
    if (!fence) return (await range(this.redis)).map((e) => toEvent(session, e));
    const conn = this.acquire();
    let healthy = false;
    try {
      // Bounded like the fence: a pooled connection queues commands while the vault is away.
      const raw = await boundedRead(conn, fence.opts.timeoutMs, () => range(conn));
      const mark = fence.mark(conn);
      if (raw.length) await boundedRead(conn, fence.opts.timeoutMs, () => fence.sync(conn, mark));
      healthy = true;
      return raw.map((e) => toEvent(session, e));
    } finally {
      this.release(conn, healthy);
    }
  }

  /** The session's last assigned seq (0 when none). */
  async lastSeq(session: string): Promise<number> {
    return Number((await this.redis.get(this.keys.turnSeq(session))) ?? 0);
  }

  /**
   * Follows the session's events after `afterSeq` until `signal` aborts, using a blocking
   * connection of its own (a duplicate, finite BLOCK) so it never stalls the shared client.
   * A read that fails or hangs (the vault restarting) is re-issued on a fresh connection, so a
   * follower outlives a vault outage instead of waiting forever on a read that never settles.
   */
  async *tail(session: string, afterSeq = 0, opts: { signal?: AbortSignal; blockMs?: number } = {}): AsyncGenerator<TurnEvent> {
    let conn = this.acquire();
    const onAbort = () => conn.disconnect(); // interrupts a pending XREAD at once
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let last = afterSeq;
    let healthy = true;
    const block = opts.blockMs ?? this.blockMs;
    try {
      while (!opts.signal?.aborted && !this.closed) {
        let res: [string, RawEventEntry[]][] | null;
        try {
          const c = conn;
          res = (await boundedRead(c, block, () =>
            c.xread('COUNT', 500, 'BLOCK', block, 'STREAMS', this.keys.turnEvents(session), `${last}-0`),
          )) as [string, RawEventEntry[]][] | null;
          // Delivered only once a replica has them; on a lag the same events are read again below.
          const fence = this.fence;
          const mark = fence?.mark(c);
          if (fence && res?.[0]?.[1]?.length) await boundedRead(c, fence.opts.timeoutMs, () => fence.sync(c, mark));
        } catch {
          if (opts.signal?.aborted || this.closed) {
            healthy = false;
            return;
          }
          // Replace the connection and retry after a pause (the caller's signal bounds the wait).
          this.release(conn, false);
          await pause(Math.min(250, block), opts.signal);
          conn = this.acquire();
          continue;
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
  async waitFor(
    session: string,
    afterSeq: number,
    predicate: (ev: TurnEvent) => boolean,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<TurnEvent | undefined> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(0, opts.timeoutMs));
    timer.unref();
    const outer = () => ac.abort();
    opts.signal?.addEventListener('abort', outer, { once: true });
    try {
      for await (const ev of this.tail(session, afterSeq, {
        signal: ac.signal,
        blockMs: Math.min(this.blockMs, Math.max(1, opts.timeoutMs)),
      })) {
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
    if (!this.busy.delete(conn)) return;
    if (reusable && !this.closed && this.idle.length < 8 && conn.status === 'ready') this.idle.push(conn);
    else conn.disconnect();
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    t.unref();
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
