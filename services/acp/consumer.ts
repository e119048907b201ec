/**
 * At-least-once job consumption for one queue: XREADGROUP on its own connection with a finite
 * BLOCK, a reclaimer (XAUTOCLAIM) for jobs whose consumer died, dead-lettering after N deliveries,
 * deadline expiry, and deduplication by job id so a redelivered job never makes a second visible
 * result. A job is acknowledged only after its results are stored.
 */
import Redis from 'ioredis';
import { AcpBus, ACP_GROUP, cmpId } from './bus';
import { AcpEnvelope, AcpError, parseEnvelope } from './envelope';
import { TurnEventStream } from './events';
import { fcall } from './functions';
import { BlockingReadStuckError, boundedRead } from './blocking';
import { preciseNow, TRACE_ENABLED, traceMark } from './trace';

export type JobOutcome = 'ok' | 'error' | 'expired' | 'duplicate' | 'dead_letter' | 'malformed';

/**
 * Thrown by a handler for a job that can never succeed (e.g. a missing part): the job goes to
 * the dead-letter stream at once instead of being retried.
 */
export class JobRejectedError extends Error {
  constructor(
    message: string,
    readonly code = 'ACP_ERR_REJECTED',
  ) {
    super(message);
    this.name = 'JobRejectedError';
  }
}

/** One delivery of a job to a handler. */
export interface Job {
  /** Stream entry id in `acp:jobs:<queue>`. */
  readonly entryId: string;
  readonly envelope: AcpEnvelope;
  /** 1 on first delivery; more after reclaims. */
  readonly deliveries: number;
  /**
   * Appends an event to the job's session stream exactly once per job: the n-th emit of a
   * redelivered job is skipped when the n-th emit of an earlier delivery already landed, so
   * handlers must emit the same sequence for the same input (deterministic).
   */
  emit(type: string, data: unknown): Promise<number>;
  /**
   * The job's last emit, and its commit in the same step (one vault round trip instead of two): the
   * event is appended as by `emit` and the job is marked done and acknowledged with it. The handler
   * emits nothing after it; should it fail after it, the job stays done (its result is stored).
   * `turn.end` cannot be the final emit (it is emitted, and the job committed as usual).
   */
  emitFinal(type: string, data: unknown): Promise<number>;
  /** Aborted when the consumer stops hard (drain timed out), or the job overran its deadline by overrunMs. */
  readonly signal: AbortSignal;
}

export interface JobConsumerOptions {
  /** `core:3`, `cali`, `whisperx`, ... (stream `acp:jobs:<queue>`). */
  readonly queue: string;
  /** Consumer name in the group; stable per pod (POD_NAME) so a restart re-reads its own pending jobs. */
  readonly consumer: string;
  /** BLOCK of each read, ms; bounds how long a stop waits for the reader. @default 2000 */
  readonly blockMs?: number;
  /** Jobs in flight at once (also the XREADGROUP COUNT). @default 16 */
  readonly concurrency?: number;
  /** Handler micro-batch size: up to this many read jobs go to one `handleBatch`. @default 1 */
  readonly batchSize?: number;
  /** A pending job idle this long is taken over from its consumer. @default 30000 */
  readonly reclaimIdleMs?: number;
  /** How often to look for idle jobs. @default - reclaimIdleMs / 2, at least 50 */
  readonly reclaimIntervalMs?: number;
  /** Deliveries after which a job goes to `acp:dlq:<queue>`. @default 5 */
  readonly maxDeliveries?: number;
  /** Seconds a job's dedupe record lives. @default 86400 */
  readonly doneTtlS?: number;
  /** How often the stream is trimmed of acknowledged jobs, ms (0 disables). @default 10000 */
  readonly trimIntervalMs?: number;
  /**
   * How long past its deadline a running job keeps its claim. After that its signal aborts, it is
   * acknowledged as `expired` and its slot is freed, so a handler that can no longer finish (e.g.
   * stuck on a vault that restarted) never pins the queue trim or the backlog. @default 5000
   */
  readonly overrunMs?: number;
  /**
   * The handler is idempotent: running it again for a job already done has no effect beyond
   * emits that the per-job dedupe drops (e.g. a core's classify-and-emit). Its first delivery
   * then skips the done-record read before the handler (one vault round trip off every hop);
   * redeliveries still read it (delivery limit, duplicates). @default false
   */
  readonly idempotent?: boolean;
}

export interface JobHooks {
  onOutcome?(outcome: JobOutcome, env: AcpEnvelope | undefined, durationMs: number, err?: unknown): void;
  onBatch?(size: number): void;
  onRedelivery?(env: AcpEnvelope | undefined, deliveries: number): void;
  onError?(err: unknown, where: string): void;
}

/** Handles a micro-batch; the i-th result is undefined on success or the i-th job's error. */
export type BatchHandler = (jobs: Job[]) => Promise<Array<unknown | undefined>>;

type RawEntry = [string, string[] | null];

export class JobConsumer {
  readonly stream: string;
  private readonly blockMs: number;
  private readonly concurrency: number;
  private readonly batchSize: number;
  private readonly reclaimIdleMs: number;
  private readonly reclaimIntervalMs: number;
  private readonly maxDeliveries: number;
  private readonly doneTtlS: number;
  private readonly trimIntervalMs: number;
  private readonly overrunMs: number;
  private reader?: Redis;
  private running = false;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Runnable jobs in flight: their deadline and their own abort (linked to `hard`). */
  private readonly running_ = new Map<
    string,
    { deadline: number; jobId: string; env: AcpEnvelope; ac: AbortController; committed: boolean }
  >();
  private lastProgress = 0;
  private readonly hard = new AbortController();
  private loops: Promise<void>[] = [];
  private wake?: () => void;
  private lastBusOk = 0;
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly bus: AcpBus,
    private readonly events: TurnEventStream,
    private readonly opts: JobConsumerOptions,
    private readonly handler: BatchHandler,
    private readonly hooks: JobHooks = {},
  ) {
    this.stream = bus.keys.jobs(opts.queue);
    this.blockMs = opts.blockMs ?? 2000;
    this.concurrency = opts.concurrency ?? 16;
    this.batchSize = Math.max(1, opts.batchSize ?? 1);
    this.reclaimIdleMs = opts.reclaimIdleMs ?? 30_000;
    this.reclaimIntervalMs = opts.reclaimIntervalMs ?? Math.max(50, Math.floor(this.reclaimIdleMs / 2));
    this.maxDeliveries = opts.maxDeliveries ?? 5;
    this.doneTtlS = opts.doneTtlS ?? 86_400;
    this.trimIntervalMs = opts.trimIntervalMs ?? 10_000;
    this.overrunMs = opts.overrunMs ?? 5000;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** True when the last bus round trip (read or reclaim) succeeded within 3 blocking periods. */
  get busReachable(): boolean {
    return this.running && Date.now() - this.lastBusOk < 3 * this.blockMs + 5000;
  }

  /**
   * Why this consumer cannot take work now, or undefined when it can: the bus has not answered for
   * 3 blocking periods, or every slot is taken and no job finished for a reclaim period.
   */
  health(): string | undefined {
    if (!this.running) return 'stopped';
    const now = Date.now();
    if (!this.busReachable) return `no bus round trip for ${now - this.lastBusOk} ms`;
    if (this.inFlight.size >= this.concurrency && now - this.lastProgress > Math.max(this.reclaimIdleMs, 2 * this.blockMs)) {
      return `all ${this.concurrency} slots busy and no job finished for ${now - this.lastProgress} ms`;
    }
    return undefined;
  }

  private newReader(): Redis {
    this.reader?.disconnect();
    const r = this.bus.redis.duplicate({ maxRetriesPerRequest: null, enableAutoPipelining: false, disconnectTimeout: 100 });
    r.on('error', () => undefined); // surfaced by the rejected commands instead
    this.reader = r;
    return r;
  }

  /** Resolves once consuming (retrying while the vault is unreachable), or when stopped first. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.newReader();
    while (this.running) {
      try {
        await this.bus.ensureGroup(this.opts.queue);
        // A restarted pod (same consumer name) first re-reads the jobs it held before it died.
        await this.readOwnPending();
        break;
      } catch (err) {
        this.hooks.onError?.(err, 'start');
        await this.sleep(1000);
      }
    }
    if (!this.running) return;
    this.lastBusOk = this.lastProgress = Date.now();
    this.loops = [this.readLoop(), this.reclaimLoop(), ...(this.trimIntervalMs > 0 ? [this.trimLoop()] : [])];
  }

  /**
   * Stops reading, waits up to `drainMs` for in-flight jobs, then aborts the rest. Jobs not
   * finished stay pending in the group and are reclaimed by another consumer after the idle time.
   */
  async stop(drainMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    for (const s of [...this.sleepers]) s();
    this.reader?.disconnect(); // interrupts the blocking XREADGROUP now instead of after BLOCK
    const all = Promise.allSettled([...this.inFlight.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((r) => {
        timer = setTimeout(r, drainMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    this.hard.abort();
    await Promise.allSettled(this.loops);
  }

  // ---- loops -------------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    while (this.running) {
      const capacity = this.concurrency - this.inFlight.size;
      if (capacity <= 0) {
        await this.waitForSlot();
        continue;
      }
      try {
        const reader = this.reader!;
        // Bounded: a read issued while the connection reconnects may never settle (issue 13's outage).
        const res = (await boundedRead(reader, this.blockMs, () =>
          reader.xreadgroup('GROUP', ACP_GROUP, this.opts.consumer, 'COUNT', capacity, 'BLOCK', this.blockMs, 'STREAMS', this.stream, '>'),
        )) as [string, RawEntry[]][] | null;
        this.lastBusOk = Date.now();
        const entries = res?.[0]?.[1] ?? [];
        if (entries.length) this.dispatch(entries.map((e) => ({ entry: e, deliveries: 1, at: TRACE_ENABLED ? preciseNow() : 0 })));
      } catch (err) {
        if (!this.running) return;
        if (String((err as Error).message).includes('NOGROUP')) {
          await this.bus.ensureGroup(this.opts.queue, true).catch(() => undefined);
        } else if (err instanceof BlockingReadStuckError || this.reader?.status === 'end') {
          this.hooks.onError?.(err, 'read');
          this.newReader();
          // The abandoned read may have been served (entries now pending on this consumer, reply lost):
          // pick them up at once rather than after reclaimIdleMs.
          await this.readOwnPending().catch((e) => this.hooks.onError?.(e, 'read'));
        } else {
          this.hooks.onError?.(err, 'read');
        }
        await this.sleep(500);
      }
    }
  }

  private async reclaimLoop(): Promise<void> {
    while (this.running) {
      await this.sleep(this.reclaimIntervalMs);
      if (!this.running) return;
      try {
        await this.heartbeat();
        await this.reclaim();
        this.lastBusOk = Date.now();
      } catch (err) {
        if (this.running) this.hooks.onError?.(err, 'reclaim');
      }
    }
  }

  private async trimLoop(): Promise<void> {
    while (this.running) {
      await this.sleep(this.trimIntervalMs);
      if (!this.running) return;
      await this.bus.trim(this.opts.queue).catch((err) => this.running && this.hooks.onError?.(err, 'trim'));
    }
  }

  /**
   * Resets the idle time of the jobs this consumer is still working on (XCLAIM … JUSTID, which
   * does not count a delivery), so a job that takes longer than reclaimIdleMs is not taken over
   * by another consumer — only a dead or hung consumer's jobs go idle.
   */
  async heartbeat(): Promise<void> {
    await this.releaseOverruns();
    const ids = [...this.inFlight.keys()].filter((id) => !this.isOverrun(id));
    for (let i = 0; i < ids.length; i += 500) {
      await this.bus.redis.xclaim(this.stream, ACP_GROUP, this.opts.consumer, 0, ...ids.slice(i, i + 500), 'JUSTID');
    }
  }

  private isOverrun(entryId: string, now = Date.now()): boolean {
    const r = this.running_.get(entryId);
    return !!r && now > r.deadline + this.overrunMs;
  }

  /**
   * Jobs still running overrunMs past their deadline can no longer be of use: abort them, ack them
   * as `expired` and free their slots, so neither the trim floor nor the backlog waits on them.
   */
  async releaseOverruns(): Promise<number> {
    const now = Date.now();
    let n = 0;
    for (const [entryId, r] of [...this.running_]) {
      if (!this.isOverrun(entryId, now)) continue;
      this.running_.delete(entryId);
      r.ac.abort();
      this.inFlight.delete(entryId);
      n++;
      await this.commit(entryId, r.jobId, 'expired');
      this.hooks.onOutcome?.(
        'expired',
        r.env,
        now - r.deadline,
        new Error(`still running ${now - r.deadline} ms past its deadline: released`),
      );
      this.wake?.();
    }
    return n;
  }

  /** Takes over jobs idle longer than reclaimIdleMs (their consumer died or hung). */
  async reclaim(): Promise<number> {
    const r = this.bus.redis;
    let cursor = '0-0';
    let total = 0;
    do {
      const capacity = Math.max(1, this.concurrency - this.inFlight.size);
      const res = (await r.xautoclaim(this.stream, ACP_GROUP, this.opts.consumer, this.reclaimIdleMs, cursor, 'COUNT', capacity)) as [
        string,
        RawEntry[],
        string[]?,
      ];
      cursor = res[0];
      const claimed = res[1].filter((e) => !this.inFlight.has(e[0]));
      if (claimed.length) {
        const counts = await this.deliveryCounts(claimed.map((e) => e[0]));
        total += claimed.length;
        this.dispatch(claimed.map((e) => ({ entry: e, deliveries: counts.get(e[0]) ?? 2 })));
      }
      if (this.inFlight.size >= this.concurrency) break;
    } while (cursor !== '0-0' && this.running);
    return total;
  }

  private async readOwnPending(): Promise<void> {
    const reader = this.reader!;
    const res = (await boundedRead(reader, 0, () =>
      reader.xreadgroup('GROUP', ACP_GROUP, this.opts.consumer, 'COUNT', 1000, 'STREAMS', this.stream, '0'),
    )) as [string, RawEntry[]][] | null;
    const entries = (res?.[0]?.[1] ?? []).filter((e) => e[1] !== null && !this.inFlight.has(e[0]));
    if (!entries.length) return;
    const counts = await this.deliveryCounts(entries.map((e) => e[0]));
    // History reads do not bump the delivery counter; count this one ourselves.
    this.dispatch(entries.map((e) => ({ entry: e, deliveries: (counts.get(e[0]) ?? 1) + 1 })));
  }

  private async deliveryCounts(ids: string[]): Promise<Map<string, number>> {
    const sorted = [...ids].sort(cmpId);
    const rows = (await this.bus.redis.xpending(this.stream, ACP_GROUP, sorted[0], sorted[sorted.length - 1], ids.length + 1000)) as [
      string,
      string,
      number,
      number,
    ][];
    return new Map(rows.map((row) => [row[0], Number(row[3])]));
  }

  // ---- processing --------------------------------------------------------------------------

  private dispatch(items: { entry: RawEntry; deliveries: number; at?: number }[]): void {
    for (let i = 0; i < items.length; i += this.batchSize) {
      const chunk = items.slice(i, i + this.batchSize);
      const p = this.processBatch(chunk).catch((err) => this.hooks.onError?.(err, 'process'));
      const done: Promise<void> = p.finally(() => {
        // A released (overrun) job's slot may already hold a later delivery of the same entry.
        for (const it of chunk) {
          if (this.inFlight.get(it.entry[0]) === done) this.inFlight.delete(it.entry[0]);
          this.running_.delete(it.entry[0]);
        }
        this.lastProgress = Date.now();
        this.wake?.();
      });
      for (const it of chunk) this.inFlight.set(it.entry[0], done);
    }
  }

  private async processBatch(items: { entry: RawEntry; deliveries: number; at?: number }[]): Promise<void> {
    const runnable: Job[] = [];
    const started = Date.now();
    for (const { entry, deliveries, at } of items) {
      const job = await this.admit(entry, deliveries);
      if (job && TRACE_ENABLED) {
        if (at) traceMark(job.envelope.turn, `${this.opts.queue}.pickup`, at);
        traceMark(job.envelope.turn, `${this.opts.queue}.admitted`);
      }
      if (job) runnable.push(job);
    }
    if (!runnable.length) return;
    this.hooks.onBatch?.(runnable.length);
    let results: Array<unknown | undefined>;
    try {
      results = await this.handler(runnable);
    } catch (err) {
      results = runnable.map(() => err);
    }
    const ms = Date.now() - started;
    await Promise.all(
      runnable.map(async (job, i) => {
        const err = results[i];
        // Released as an overrun meanwhile: already acknowledged as expired.
        const run = this.running_.get(job.entryId);
        if (!run) return;
        if (run.committed) {
          // emitFinal stored the result and acknowledged the job: it is done, whatever came after.
          if (err !== undefined) this.hooks.onError?.(err, 'process');
          traceMark(job.envelope.turn, `${this.opts.queue}.handled`);
          this.hooks.onOutcome?.('ok', job.envelope, ms);
          return;
        }
        if (err === undefined) {
          traceMark(job.envelope.turn, `${this.opts.queue}.handled`);
          await this.commit(job.entryId, job.envelope.id);
          this.hooks.onOutcome?.('ok', job.envelope, ms);
        } else if (err instanceof JobRejectedError) {
          await this.deadLetter(job.entryId, job.envelope.id, err.code, err.message, job.deliveries, JSON.stringify(job.envelope));
          await this.reportGiveUp(job.envelope, err.code, err.message);
          this.hooks.onOutcome?.('dead_letter', job.envelope, ms, err);
        } else {
          // Left pending: the reclaimer retries it after reclaimIdleMs, up to maxDeliveries.
          await this.bus.redis.hset(this.bus.keys.done(job.envelope.id), 'error', errorText(err)).catch(() => undefined);
          await this.bus.redis.expire(this.bus.keys.done(job.envelope.id), this.doneTtlS).catch(() => undefined);
          this.hooks.onOutcome?.('error', job.envelope, ms, err);
        }
      }),
    );
  }

  /** Decides what to do with one delivery; returns a Job only when the handler should run. */
  private async admit(entry: RawEntry, deliveries: number): Promise<Job | undefined> {
    const [entryId, fields] = entry;
    const t0 = Date.now();
    const raw = fieldOf(fields, 'env');
    let env: AcpEnvelope;
    try {
      env = parseEnvelope(raw ?? '');
    } catch (err) {
      const code = err instanceof AcpError ? err.code : 'ACP_ERR_ENVELOPE';
      await this.deadLetter(entryId, '', code, errorText(err), deliveries, raw ?? JSON.stringify(fields));
      this.hooks.onOutcome?.('malformed', undefined, Date.now() - t0, err);
      return undefined;
    }
    if (deliveries > 1) this.hooks.onRedelivery?.(env, deliveries);
    const doneKey = this.bus.keys.done(env.id);
    // A first delivery has no earlier error, and an idempotent handler's rerun of a done job only
    // repeats emits the dedupe drops: the read is needed for redeliveries and other handlers.
    const [done, lastError] =
      deliveries === 1 && this.opts.idempotent ? [null, null] : await this.bus.redis.hmget(doneKey, 'done', 'error');
    if (done) {
      await this.bus.redis.xack(this.stream, ACP_GROUP, entryId);
      this.hooks.onOutcome?.('duplicate', env, Date.now() - t0);
      return undefined;
    }
    if (deliveries > this.maxDeliveries) {
      const why = `gave up after ${deliveries - 1} deliveries: ${lastError ?? 'no error recorded (consumer died?)'}`;
      await this.deadLetter(entryId, env.id, 'ACP_ERR_DELIVERIES', why, deliveries, raw ?? '');
      await this.reportGiveUp(env, 'ACP_ERR_DELIVERIES', why);
      this.hooks.onOutcome?.('dead_letter', env, Date.now() - t0);
      return undefined;
    }
    if (Date.now() > env.deadline_ms) {
      await this.commit(entryId, env.id, 'expired');
      this.hooks.onOutcome?.('expired', env, Date.now() - t0);
      return undefined;
    }
    let emitted = 0;
    const ac = new AbortController();
    const run = { deadline: env.deadline_ms, jobId: env.id, env, ac, committed: false };
    this.running_.set(entryId, run);
    // The n-th emit of a job dedupes on field e<n> of its done record; `final` also commits the job.
    const emitAs = async (type: string, data: unknown, final: boolean) => {
      const ev = { type, turn: env.turn, data, job: env.id };
      const dedupe = { key: doneKey, field: `e${emitted++}`, ttlS: this.doneTtlS };
      const res = final
        ? await this.events.appendAndCommit(env.session, ev, dedupe, { stream: this.stream, entry: entryId, mark: 'ok', group: ACP_GROUP })
        : await this.events.append(env.session, ev, { dedupe });
      if (final) run.committed = true;
      traceMark(env.turn, `${this.opts.queue}.emitted.${type}`);
      return res.seq;
    };
    return {
      entryId,
      envelope: env,
      deliveries,
      signal: AbortSignal.any([this.hard.signal, ac.signal]),
      emit: (type, data) => emitAs(type, data, false),
      emitFinal: (type, data) => emitAs(type, data, type !== 'turn.end'),
    };
  }

  /**
   * Tells the turn's listeners (the gateway, the client) that a job of it was dead-lettered:
   * a `turn.error` event, once per job. A core's job is not fatal (the other cores can still make
   * a quorum, and CALI reports `turn.no_quorum` if not); any other role's is, so the turn also
   * gets its `turn.end {outcome: 'error'}` instead of leaving clients to wait for the deadline.
   */
  private async reportGiveUp(env: AcpEnvelope, code: string, message: string): Promise<void> {
    const dedupe = (field: string) => ({ dedupe: { key: this.bus.keys.done(env.id), field, ttlS: this.doneTtlS } });
    try {
      await this.events.append(
        env.session,
        { type: 'turn.error', turn: env.turn, job: env.id, data: { code, message, kind: env.kind, job: env.id } },
        dedupe('giveup'),
      );
      if (!isCoreQueue(this.opts.queue)) {
        await this.events.append(
          env.session,
          { type: 'turn.end', turn: env.turn, job: env.id, data: { outcome: 'error', code } },
          dedupe('giveup_end'),
        );
      }
    } catch (err) {
      this.hooks.onError?.(err as Error, 'report');
    }
  }

  private async commit(entryId: string, jobId: string, mark = 'ok'): Promise<void> {
    await fcall(this.bus.redis, 'orb_commit_job', [this.bus.keys.done(jobId), this.stream], [entryId, mark, this.doneTtlS, ACP_GROUP]);
  }

  private async deadLetter(entryId: string, jobId: string, code: string, error: string, deliveries: number, raw: string): Promise<void> {
    await fcall(
      this.bus.redis,
      'orb_dead_letter',
      [this.stream, this.bus.keys.dlq(this.opts.queue)],
      [entryId, jobId, code, error.slice(0, 2000), deliveries, raw.slice(0, 64_000), 10_000, Date.now(), ACP_GROUP],
    );
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      this.sleepers.add(done);
    });
  }
}

function fieldOf(fields: string[] | null, name: string): string | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `core:<n>` queues: one of several verdict cores, whose loss the quorum absorbs. */
function isCoreQueue(queue: string): boolean {
  return queue.startsWith('core:');
}
