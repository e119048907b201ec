/**
 * The worker runtime every role shares (core, cali, whisperx, xtts): load the role's model(s),
 * consume its ACP queue, process jobs (optionally in micro-batches), publish results, ack;
 * serve /livez, /readyz (model loaded, bus reachable) and /metrics on PORT; drain on SIGTERM.
 *
 * A role is a factory `(ctx: RoleContext) => WorkerRole`; see services/workers/main.ts.
 */
import Fastify, { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import pino, { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Acp, ConsumerLiveness, createAcp, Job, JobConsumer, JobOutcome, ModelRegistry, ServedModel, connectVault } from '../../acp';
import { EnvValues, loadEnv } from '../../config/env';
import { VAULT_ENV } from '../../config/vault';
import { WORKER_ENV } from '../../config/worker';

export type WorkerConfig = EnvValues<typeof WORKER_ENV>;
export type { Job } from '../../acp';

/** What a role gets to build itself. */
export interface RoleContext {
  /** Raw environment: the role loads its own schema from it with loadEnv. */
  readonly env: NodeJS.ProcessEnv;
  readonly worker: WorkerConfig;
  /** Shared vault client (non-blocking commands only). */
  readonly redis: Redis;
  readonly acp: Acp;
  readonly log: Logger;
  /** The worker's metrics registry: register role metrics here. */
  readonly metrics: Registry;
}

/**
 * One worker role. Implement `handle` (one job) or `handleBatch` (a micro-batch, e.g. one ONNX
 * run over many inputs). Results are published with `job.emit(type, data)` — exactly-once per
 * job even when redelivered — and the runtime acks after the handler resolves. Throwing leaves
 * the job pending for a retry (dead-lettered after ACP_MAX_DELIVERIES).
 */
export interface WorkerRole {
  /** Metric label and log name, e.g. `core`, `whisperx`. */
  readonly name: string;
  /** Queue consumed: `acp:jobs:<queue>`, e.g. `core:3`, `cali`, `whisperx`. */
  readonly queue: string;
  /** Micro-batch size handed to handleBatch. @default 1 */
  readonly batchSize?: number;
  /**
   * Running a job again has no effect beyond emits the per-job dedupe drops (no other writes,
   * nothing queued): its first delivery skips the done-record read (JobConsumerOptions.idempotent).
   * @default false
   */
  readonly idempotent?: boolean;
  /** Loads models; /readyz stays 503 until it resolves. */
  load(): Promise<void>;
  handle?(job: Job): Promise<void>;
  /** i-th entry: undefined on success, or the i-th job's error. */
  handleBatch?(jobs: Job[]): Promise<Array<unknown | undefined>>;
  /** Extra readiness condition. @default - ready once load resolved */
  ready?(): boolean;
  /** onnxruntime execution providers the loaded models run on (metric label). @default - none reported */
  providers?(): readonly string[];
  /** The models loaded, announced in the vault for GET /v1/models. @default - none announced */
  models?(): ServedModel[];
  /** Releases models (InferenceSession.release) and anything else the role opened. */
  dispose(): Promise<void>;
}

export type RoleFactory = (ctx: RoleContext) => WorkerRole | Promise<WorkerRole>;

export interface WorkerMetrics {
  readonly jobs: Counter<'role' | 'outcome'>;
  readonly latency: Histogram<'role' | 'outcome'>;
  readonly batchSize: Histogram<'role'>;
  readonly redeliveries: Counter<'role'>;
  readonly dlqSize: Gauge<'queue'>;
  readonly backlog: Gauge<'queue'>;
  readonly inFlight: Gauge<'role'>;
  readonly provider: Gauge<'role' | 'provider'>;
}

export interface WorkerRuntimeOptions {
  readonly redis: Redis;
  readonly worker: WorkerConfig;
  readonly keyPrefix: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  /** Skip the HTTP server (in-process tests that only exercise the bus). @default true */
  readonly http?: boolean;
  /** Host to bind. @default '0.0.0.0' */
  readonly host?: string;
  /** How long a model announcement stays valid; it is refreshed every third of this. @default 30000 */
  readonly modelTtlMs?: number;
}

export class WorkerRuntime {
  readonly metrics = new Registry();
  readonly m: WorkerMetrics;
  readonly acp: Acp;
  readonly log: Logger;
  role?: WorkerRole;
  consumer?: JobConsumer;
  app?: FastifyInstance;
  private loaded = false;
  private loadError?: string;
  private draining = false;
  private announceTimer?: NodeJS.Timeout;
  private aliveTimer?: NodeJS.Timeout;

  constructor(
    private readonly factory: RoleFactory,
    private readonly opts: WorkerRuntimeOptions,
  ) {
    this.log = opts.log ?? pino({ level: opts.worker.logLevel });
    this.acp = createAcp(opts.redis, { prefix: opts.keyPrefix, blockMs: opts.worker.blockMs });
    collectDefaultMetrics({ register: this.metrics });
    const registers = [this.metrics];
    const bus = this.acp.bus;
    let queue = '';
    this.m = {
      jobs: new Counter({
        name: 'acp_jobs_total',
        help: 'Jobs handled, by outcome (ok, error, expired, duplicate, dead_letter, malformed)',
        labelNames: ['role', 'outcome'],
        registers,
      }),
      latency: new Histogram({
        name: 'acp_job_duration_seconds',
        help: "Time from a batch start to its jobs' outcome",
        labelNames: ['role', 'outcome'],
        registers,
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      }),
      batchSize: new Histogram({
        name: 'acp_batch_size',
        help: 'Jobs per handler call (micro-batch size)',
        labelNames: ['role'],
        registers,
        buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      }),
      redeliveries: new Counter({
        name: 'acp_redeliveries_total',
        help: 'Jobs delivered more than once (reclaimed or retried)',
        labelNames: ['role'],
        registers,
      }),
      dlqSize: new Gauge({
        name: 'acp_dlq_size',
        help: "Entries in this queue's dead-letter stream",
        labelNames: ['queue'],
        registers,
        async collect() {
          if (queue) this.set({ queue }, await bus.dlqSize(queue).catch(() => 0));
        },
      }),
      // The PrometheusRule's speech-queue-lag alert and KEDA read the same backlog.
      backlog: new Gauge({
        name: 'acp_consumer_lag',
        help: 'Jobs of this queue not yet acknowledged by its consumer group (undelivered + pending)',
        labelNames: ['queue'],
        registers,
        async collect() {
          if (!queue) return;
          const b = await bus.backlog(queue).catch(() => undefined);
          if (b) this.set({ queue }, b.lag + b.pending);
        },
      }),
      inFlight: new Gauge({ name: 'acp_jobs_in_flight', help: 'Jobs being processed now', labelNames: ['role'], registers }),
      provider: new Gauge({
        name: 'worker_execution_provider',
        help: 'onnxruntime execution provider the loaded models run on (1 per provider in use)',
        labelNames: ['role', 'provider'],
        registers,
      }),
    };
    this.setQueue = (q) => {
      queue = q;
    };
  }

  private readonly setQueue: (q: string) => void;

  /**
   * Liveness: the event loop answers. Readiness: model loaded, bus reachable, consuming (not
   * stalled on jobs it cannot finish), not draining; `reason` names the first failed check.
   */
  readiness(): { ready: boolean; checks: Record<string, boolean>; reason: string | null } {
    const consumerHealth = this.consumer?.health();
    const checks = {
      model_loaded: this.loaded && (this.role?.ready?.() ?? true),
      bus_reachable: this.opts.redis.status === 'ready' && (this.consumer?.busReachable ?? false),
      consuming: this.consumer !== undefined && consumerHealth === undefined,
      accepting: !this.draining,
    };
    const reason = !checks.accepting
      ? 'draining'
      : !checks.model_loaded
        ? this.loadError
          ? `model load failed: ${this.loadError}`
          : 'loading models'
        : !checks.bus_reachable
          ? `vault not reachable${consumerHealth ? ` (${consumerHealth})` : ''}`
          : !checks.consuming
            ? (consumerHealth ?? 'not consuming yet')
            : null;
    return { ready: reason === null, checks, reason };
  }

  /** Starts HTTP first (so /livez answers during a long model load), then loads and consumes. */
  async start(): Promise<void> {
    if (this.opts.http ?? true) await this.listen();
    const ctx: RoleContext = {
      env: this.opts.env ?? process.env,
      worker: this.opts.worker,
      redis: this.opts.redis,
      acp: this.acp,
      log: this.log,
      metrics: this.metrics,
    };
    const role = await this.factory(ctx);
    this.role = role;
    this.setQueue(role.queue);
    const t0 = Date.now();
    try {
      await role.load();
    } catch (err) {
      // /startupz reports it until the process exits: the startup probe never passes.
      this.loadError = (err as Error).message;
      this.log.fatal({ role: role.name, err: this.loadError }, 'model load failed');
      throw err;
    }
    this.loaded = true;
    const providers = role.providers?.() ?? [];
    for (const provider of providers) this.m.provider.set({ role: role.name, provider }, 1);
    this.log.info({ role: role.name, queue: role.queue, ms: Date.now() - t0, providers }, 'model(s) loaded');
    const name = role.name;
    const handler = role.handleBatch
      ? (jobs: Job[]) => role.handleBatch!(jobs)
      : (jobs: Job[]) =>
          Promise.all(
            jobs.map((j) =>
              role.handle!(j).then(
                () => undefined,
                (err: unknown) => err ?? new Error('handler failed'),
              ),
            ),
          );
    if (!role.handleBatch && !role.handle) throw new Error(`role ${name} implements neither handle nor handleBatch`);
    const w = this.opts.worker;
    this.consumer = new JobConsumer(
      this.acp.bus,
      this.acp.events,
      {
        queue: role.queue,
        consumer: this.consumerName(),
        blockMs: w.blockMs,
        concurrency: w.concurrency,
        batchSize: role.batchSize ?? 1,
        reclaimIdleMs: w.reclaimIdleMs,
        maxDeliveries: w.maxDeliveries,
        doneTtlS: w.doneTtlS,
        trimIntervalMs: w.trimIntervalMs,
        overrunMs: w.overrunMs,
        idempotent: role.idempotent ?? false,
      },
      (jobs) => {
        this.m.inFlight.inc({ role: name }, jobs.length);
        return handler(jobs).finally(() => this.m.inFlight.dec({ role: name }, jobs.length));
      },
      {
        onOutcome: (outcome: JobOutcome, env, ms, err) => {
          this.m.jobs.inc({ role: name, outcome });
          this.m.latency.observe({ role: name, outcome }, ms / 1000);
          if (outcome === 'error' || outcome === 'dead_letter' || outcome === 'malformed') {
            this.log.warn({ role: name, outcome, job: env?.id, err: err instanceof Error ? err.message : err }, 'job not completed');
          } else if (outcome === 'expired') {
            this.log.info({ role: name, job: env?.id, deadline_ms: env?.deadline_ms }, 'job past its deadline dropped');
          }
        },
        onBatch: (size) => this.m.batchSize.observe({ role: name }, size),
        onRedelivery: () => this.m.redeliveries.inc({ role: name }),
        onError: (err, where) => this.log.error({ err, where }, 'bus error'),
      },
    );
    await this.consumer.start();
    this.startHeartbeat();
    await this.announceModels();
    this.log.info({ role: name, queue: role.queue, port: w.port }, 'worker consuming');
  }

  private consumerName(): string {
    return this.opts.worker.podName || `${this.role!.name}-${process.pid}`;
  }

  /** Beats `acp:alive:<queue>:<pod>` while the consumer can take work (CALI counts live cores by it). */
  private startHeartbeat(): void {
    const liveness = new ConsumerLiveness(this.opts.redis, this.acp.keys);
    const ttl = this.opts.worker.aliveTtlMs;
    const beat = () => {
      if (this.draining || !this.readiness().ready) return;
      liveness
        .beat(this.role!.queue, this.consumerName(), ttl)
        .catch((err) => this.log.warn({ err: (err as Error).message }, 'liveness heartbeat failed'));
    };
    beat();
    this.aliveTimer = setInterval(beat, Math.max(30, Math.floor(ttl / 3)));
    this.aliveTimer.unref();
  }

  /** Announces the role's models now and keeps the announcement fresh until stop(). */
  private async announceModels(): Promise<void> {
    const role = this.role!;
    if (!role.models) return;
    const registry = new ModelRegistry(this.opts.redis, this.acp.keys);
    const ttl = this.opts.modelTtlMs ?? 30_000;
    const announce = () => registry.announce(role.name, this.consumerName(), role.models!(), ttl);
    await announce();
    this.announceTimer = setInterval(
      () => {
        announce().catch((err) => this.log.warn({ err }, 'model announcement failed; retrying'));
      },
      Math.max(1000, Math.floor(ttl / 3)),
    );
    this.announceTimer.unref();
  }

  /** SIGTERM path: readiness flips, reading stops, in-flight jobs get drainTimeoutMs, then release. */
  async stop(): Promise<void> {
    this.draining = true;
    clearInterval(this.announceTimer);
    clearInterval(this.aliveTimer);
    if (this.role && this.consumer && this.opts.redis.status === 'ready') {
      await new ConsumerLiveness(this.opts.redis, this.acp.keys).retire(this.role.queue, this.consumerName()).catch(() => undefined);
    }
    if (this.role?.models && this.loaded) {
      await new ModelRegistry(this.opts.redis, this.acp.keys).withdraw(this.role.name, this.consumerName()).catch(() => undefined);
    }
    await this.consumer?.stop(this.opts.worker.drainTimeoutMs);
    await this.role?.dispose().catch((err) => this.log.error({ err }, 'dispose failed'));
    await this.acp.close();
    await this.app?.close();
  }

  /** Outcome count for one outcome (tests and the bench read it without scraping). */
  async count(outcome: JobOutcome): Promise<number> {
    const v = (await this.m.jobs.get()).values.find((x) => x.labels.outcome === outcome);
    return v?.value ?? 0;
  }

  private async listen(): Promise<void> {
    const app = Fastify({ logger: false });
    app.get('/livez', async () => ({ status: 'ok' }));
    // Startup probe: passes once the models are loaded on the configured provider, never after a failed load.
    app.get('/startupz', async (_req, reply) => {
      if (this.loaded) return { status: 'started', providers: this.role?.providers?.() ?? [] };
      if (this.loadError) return reply.code(500).send({ status: 'failed', error: this.loadError });
      return reply.code(503).send({ status: 'loading' });
    });
    app.get('/readyz', async (_req, reply) => {
      const r = this.readiness();
      return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', reason: r.reason, checks: r.checks });
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.metrics()));
    await app.listen({ port: this.opts.worker.port, host: this.opts.host ?? '0.0.0.0' });
    this.app = app;
  }
}

/**
 * The process entry of a worker: reads VAULT_ENV + WORKER_ENV, connects, runs the role, drains on
 * SIGTERM/SIGINT (close-with-grace). Config errors exit 2 with every bad variable named.
 */
export async function runWorker(factory: RoleFactory, env: NodeJS.ProcessEnv = process.env): Promise<WorkerRuntime> {
  const vault = loadEnv(VAULT_ENV, env);
  const worker = loadEnv(WORKER_ENV, env);
  const log = pino({ level: worker.logLevel });
  const redis = connectVault(vault, { connectionName: `worker:${worker.podName || process.pid}` });
  let lastError = '';
  redis.on('error', (err: Error) => {
    if (err.message !== lastError) log.warn({ err: err.message }, 'vault connection error'); // once per distinct error, not per retry
    lastError = err.message;
  });
  redis.on('ready', () => {
    lastError = '';
  });
  const runtime = new WorkerRuntime(factory, { redis, worker, keyPrefix: vault.keyPrefix, env, log });
  const closeWithGrace = (await import('close-with-grace')).default;
  closeWithGrace({ delay: worker.drainTimeoutMs + 5000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error, draining');
    log.info({ signal }, 'draining');
    await runtime.stop();
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
    else redis.disconnect(); // QUIT would wait in the offline queue for a vault that is down
  });
  await runtime.start();
  return runtime;
}
