/**
 * Delivery after replication: an event is shown to a client only once a replica has it, so a
 * failover (a replica promoted, the old primary's unreplicated tail discarded) can never take back
 * an event a client has seen.
 *
 * WAIT alone on a reader does nothing: Redis makes WAIT wait for the replication offset of the
 * calling connection's own last write (`c->woff`), and a reader never writes. So a fence is a tiny
 * write on the same connection that just read (SET of a per-reader key) followed by WAIT: the SET's
 * offset is past every write the read could have seen, so a replica acknowledging it has them all.
 * It must be the reading connection: after a failover another connection may already talk to the
 * new primary, whose acknowledgement says nothing about what the old one served.
 *
 * One fence covers a whole read batch (the gateway tail reads every socket's session in one XREAD).
 *
 * Same server also means no reconnect in between: ioredis resends commands a dropped connection had
 * not answered on the next one, which after a failover is the NEW primary, where WAIT would then
 * vouch for events the old one served. `mark(conn)` right after the read and `sync(conn, mark)`
 * refuse when the connection is on another socket by then (the SIGSTOP drill caught this).
 *
 * It waits for EVERY online replica (at least `replicas`), not just one: Sentinel promotes the
 * replica with the highest offset as its last INFO (up to a second old) saw it, so with two
 * replicas the one promoted may be the one that had not acknowledged yet. The failover drill
 * (test/services/vault-drills.test.ts) lost events a client had seen with WAIT 1 and two replicas.
 * The primary's online replicas are read from INFO replication on the same connection, at most
 * once a second and again after every lag.
 *
 * A replica that leaves is not dropped from the count at once: the fence keeps waiting for the most
 * replicas it has seen until a lower count has been observed for `replicaGraceMs`. Without that, a
 * primary that was frozen (SIGSTOP, a VM pause) and resumes after Sentinel promoted one of its
 * replicas still counts the other one, which may not yet have been moved to the new primary, as its
 * only online replica: WAIT 1 passes there, the event is shown, and it is discarded when that
 * replica resyncs from the new primary. The SIGSTOP drill under text + audio load lost 8 shown
 * events that way in 2 of 12 runs. The grace outlasts the old primary's demotion (about a second
 * after it resumes); its cost is that delivery pauses for up to the grace when a replica really
 * goes away, and then goes on with the ones left.
 */
import type Redis from 'ioredis';

export interface DeliveryFenceOptions {
  /** Key the fence writes (one per reader process, e.g. `orb:fence:{pod}`); expires by itself. */
  readonly key: string;
  /** Replicas that must acknowledge; 0 turns the fence off. */
  readonly replicas: number;
  /** How long a connection's count of online replicas (INFO replication) is reused. @default 1000 */
  readonly replicasRefreshMs?: number;
  /** WAIT timeout; past it nothing is delivered (ReplicationLagError) and the reader retries. */
  readonly timeoutMs: number;
  /**
   * How long a lower count of online replicas must persist before the fence stops waiting for the
   * replicas that left (measured from the first fence that saw fewer). @default 10000
   */
  readonly replicaGraceMs?: number;
}

/** A read's events were not acknowledged by enough replicas in time: they are held back. */
export class ReplicationLagError extends Error {
  constructor(
    readonly acked: number,
    readonly wanted: number,
    readonly timeoutMs: number,
    why?: string,
  ) {
    super(`${why ?? `only ${acked} of ${wanted} replica(s) acknowledged within ${timeoutMs} ms`}: events held back until they do`);
    this.name = 'ReplicationLagError';
  }
}

export class DeliveryFence {
  private n = 0;
  private readonly online = new WeakMap<Redis, { replicas: number; at: number }>();
  /** The most replicas seen online, and since when fewer have been seen (see replicaGraceMs). */
  private peak = 0;
  private fewerSince: number | undefined;
  /** Fences run; for metrics and the bench. */
  rounds = 0;

  constructor(readonly opts: DeliveryFenceOptions) {
    if (!Number.isInteger(opts.replicas) || opts.replicas < 0) throw new Error('replicas must be an integer >= 0');
    if (!(opts.timeoutMs >= 1)) throw new Error('timeoutMs must be >= 1 (WAIT 0 would block forever)');
  }

  get enabled(): boolean {
    return this.opts.replicas > 0;
  }

  /**
   * Resolves once `opts.replicas` replicas hold everything `conn`'s server had written before this
   * call; rejects with ReplicationLagError (or the server's error, e.g. NOREPLICAS) otherwise.
   * `conn` must be the connection the events were read on, and not one shared with other callers
   * (WAIT blocks it).
   */
  /**
   * Which socket `conn` is on: take it right after the read the fence covers (its reply came over
   * that socket). A fence whose connection is on another socket by then vouches for nothing.
   */
  mark(conn: Redis): unknown {
    return conn.stream;
  }

  async sync(conn: Redis, mark?: unknown): Promise<void> {
    if (!this.enabled) return;
    this.rounds += 1;
    this.n = (this.n + 1) % 1_000_000_000;
    const wanted = Math.max(this.opts.replicas, this.withGrace(await this.onlineReplicas(conn)));
    const set = conn.set(this.opts.key, String(this.n), 'PX', 60_000);
    const wait = conn.call('WAIT', wanted, this.opts.timeoutMs) as Promise<number>;
    // Both are sent at once (one round trip); the SET's failure (NOREPLICAS, READONLY) wins.
    const [s, w] = await Promise.allSettled([set, wait]);
    if (s.status === 'rejected') {
      const err = s.reason as Error;
      // min-replicas-to-write refused the fence's own write: no replica is there to acknowledge. That
      // is the lag case, answered as fast as the server refused; pause so a retrying reader does not spin.
      if (/^NOREPLICAS/.test(err?.message ?? '')) {
        this.online.delete(conn);
        await new Promise((r) => setTimeout(r, Math.min(this.opts.timeoutMs, 250)));
        throw new ReplicationLagError(0, wanted, this.opts.timeoutMs);
      }
      throw err;
    }
    if (w.status === 'rejected') throw w.reason;
    const acked = Number(w.value);
    if (mark !== undefined && conn.stream !== mark) {
      // The read and the WAIT may have run on different servers: nothing is vouched for.
      this.online.delete(conn);
      throw new ReplicationLagError(0, wanted, this.opts.timeoutMs, 'the connection was re-established between the read and the WAIT');
    }
    if (acked < wanted) {
      this.online.delete(conn); // a replica may have gone: count again before the next fence
      throw new ReplicationLagError(acked, wanted, this.opts.timeoutMs);
    }
  }

  /** The count to wait for: the peak, until fewer replicas have been seen for the grace period. */
  private withGrace(online: number, now = Date.now()): number {
    if (online >= this.peak) {
      this.peak = online;
      this.fewerSince = undefined;
    } else if (this.fewerSince === undefined) {
      this.fewerSince = now;
    } else if (now - this.fewerSince >= (this.opts.replicaGraceMs ?? 10_000)) {
      this.peak = online;
      this.fewerSince = undefined;
    }
    return this.peak;
  }

  /** Replicas in state online on `conn`'s server (cached per connection). */
  private async onlineReplicas(conn: Redis): Promise<number> {
    const now = Date.now();
    const hit = this.online.get(conn);
    if (hit && now - hit.at < (this.opts.replicasRefreshMs ?? 1000)) return hit.replicas;
    const info = String(await conn.info('replication'));
    const replicas = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
    this.online.set(conn, { replicas, at: now });
    return replicas;
  }
}
