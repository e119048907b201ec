/**
 * One tail per replica for every session that has a WebSocket here: a single blocking XREAD over
 * all their `turn:{sid}:events` streams on one dedicated connection, instead of one blocking
 * connection per socket (1,000 sockets would otherwise be 1,000 Redis connections).
 * Stream entry ids are `<seq>-0` (services/acp/events.ts), so a cursor is just a seq; entries are
 * read back with the bus's own `toEvent`, so the field layout has one definition.
 *
 * With a delivery fence (services/acp/replication.ts) nothing is delivered before a replica has
 * it: after each XREAD that returned events, one fence (SET + WAIT on the same connection) covers
 * the whole batch; when it fails (replica lagging or down) the cursors stay where they were, so
 * the same events are read and fenced again, and delivered exactly once when a replica has them.
 */
import type Redis from 'ioredis';
import { toEvent, type RawEventEntry, type TurnEvent, type TurnEventStream } from '../acp/events';
import type { VaultKeys } from '../acp/keys';
import { BlockingReadStuckError, boundedRead } from '../acp/blocking';
import { ReplicationLagError, type DeliveryFence } from '../acp/replication';
import { flatString } from './ids';

export interface Subscription {
  /** Stops delivery; idempotent. */
  close(): void;
}

/** Who gets a session's events: a function, or an object's `deliver` method (no closure per subscriber). */
export type EventReceiver = ((events: TurnEvent[]) => void) | { deliver(events: TurnEvent[]): void };

/**
 * One subscriber's state, and its own Subscription handle: a replica holds one per open
 * WebSocket for as long as it is open, so it is one small object, not a set of closures.
 */
class Sub implements Subscription {
  /** Live events buffered while the catch-up read runs, so nothing falls between the two. */
  buffer: TurnEvent[] | null = [];
  closed = false;
  constructor(
    private readonly hub: EventHub,
    readonly session: string,
    public cursor: number,
    private readonly receiver: EventReceiver,
  ) {}
  deliver(events: TurnEvent[]): void {
    const r = this.receiver;
    if (typeof r === 'function') r(events);
    else r.deliver(events);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.unsubscribe(this);
  }
}

interface Group {
  /** The session's event stream key, made once (flat) rather than on every read of the tail. */
  key: string;
  cursor: number;
  /** Almost always one (a session's socket on this replica): an array, not a Set. */
  subs: Sub[];
}

export class EventHub {
  private readonly groups = new Map<string, Group>();
  private conn: Redis | null = null;
  private running = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: VaultKeys,
    private readonly events: TurnEventStream,
    private readonly opts: { blockMs: number; onError: (err: unknown) => void; fence?: DeliveryFence },
  ) {}

  sessions(): number {
    return this.groups.size;
  }

  /**
   * Delivers every event of `session` with seq > afterSeq, in order, each exactly once: first the
   * stored ones (catch-up), then live ones. `deliver` is called synchronously in seq order.
   */
  async subscribe(session: string, afterSeq: number, deliver: EventReceiver): Promise<Subscription> {
    const sub = new Sub(this, session, afterSeq, deliver);
    const group = this.groups.get(session);
    if (group) group.subs.push(sub);
    else this.groups.set(session, { key: flatString(this.keys.turnEvents(session)), cursor: afterSeq, subs: [sub] });
    this.start();
    this.wake?.();
    try {
      // Registered before reading: an event appended now is either in this read or in the buffer.
      // (`events.read` is fenced when the stream has a fence: a lagging replica holds it back.)
      for (let lagged = 0; !sub.closed;) {
        let page: TurnEvent[];
        try {
          page = await this.events.read(session, sub.cursor, 500);
        } catch (err) {
          if (!(err instanceof ReplicationLagError) || !this.running) throw err;
          // Held back, not failed: the socket waits (its live events buffer meanwhile) until a replica has them.
          if (lagged++ === 0) this.opts.onError(err);
          continue;
        }
        this.push(sub, page);
        if (page.length < 500) break;
      }
      const buffered = sub.buffer ?? [];
      sub.buffer = null;
      this.push(sub, buffered);
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }

  /** Sub.close(): the subscriber leaves its session's group, and the group the tail once empty. */
  unsubscribe(sub: Sub): void {
    const g = this.groups.get(sub.session);
    if (!g) return;
    const i = g.subs.indexOf(sub);
    if (i >= 0) g.subs.splice(i, 1);
    if (!g.subs.length) this.groups.delete(sub.session);
  }

  private push(sub: Sub, events: TurnEvent[]): void {
    if (sub.closed) return;
    const fresh = events.filter((e) => e.seq > sub.cursor);
    if (!fresh.length) return;
    sub.cursor = fresh[fresh.length - 1].seq;
    sub.deliver(fresh);
  }

  private start(): void {
    if (this.running) return;
    this.running = true;
    this.conn = this.tailConnection();
    this.loopDone = this.loop();
  }

  /** The tail's own connection; its errors surface through the rejected XREAD (onError), not as unhandled events. */
  private tailConnection(): Redis {
    const conn = this.redis.duplicate({ maxRetriesPerRequest: null, enableAutoPipelining: false });
    conn.on('error', () => undefined);
    return conn;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      if (!this.groups.size) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
        continue;
      }
      const sessions: string[] = [];
      const streamKeys: string[] = [];
      const ids: string[] = [];
      for (const [s, g] of this.groups) {
        sessions.push(s);
        streamKeys.push(g.key);
        ids.push(`${g.cursor}-0`);
      }
      let res: [string, RawEventEntry[]][] | null;
      try {
        const conn = this.conn!;
        // Bounded: an XREAD issued while the vault restarts may never settle (services/acp/blocking.ts).
        res = (await boundedRead(conn, this.opts.blockMs, () =>
          conn.xread('COUNT', 500, 'BLOCK', this.opts.blockMs, 'STREAMS', ...streamKeys, ...ids),
        )) as [string, RawEventEntry[]][] | null;
        // One fence for the whole batch, on the connection that read it (see the header).
        const fence = this.opts.fence;
        if (fence?.enabled && res?.some(([, entries]) => entries.length)) {
          const mark = fence.mark(conn);
          await boundedRead(conn, fence.opts.timeoutMs, () => fence.sync(conn, mark));
        }
      } catch (err) {
        if (!this.running) return;
        this.opts.onError(err);
        if (err instanceof ReplicationLagError) continue; // WAIT already waited its timeout: read and fence again
        if (err instanceof BlockingReadStuckError || this.conn?.status === 'end') {
          this.conn?.disconnect();
          this.conn = this.tailConnection();
        }
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const [streamKey, entries] of res ?? []) {
        const session = sessions[streamKeys.indexOf(streamKey)];
        const group = this.groups.get(session);
        if (!group || !entries.length) continue;
        const evs = entries.map((e) => toEvent(session, e));
        group.cursor = evs[evs.length - 1].seq;
        // A copy when there are several: a delivery may close a subscription (and splice the array).
        for (const sub of group.subs.length === 1 ? group.subs : [...group.subs]) {
          if (sub.buffer) sub.buffer.push(...evs);
          else this.push(sub, evs);
        }
      }
    }
  }

  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.conn?.disconnect();
    await this.loopDone?.catch(() => undefined);
    this.groups.clear();
  }
}
