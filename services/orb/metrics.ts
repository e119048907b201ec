/** Prometheus metrics on a per-app registry (two apps in one test process must not share one). */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface OrbMetrics {
  readonly registry: Registry;
  readonly busLag: Histogram<string>;
  readonly eventsForwarded: Counter<string>;
  readonly turns: Counter<'mode' | 'outcome'>;
  readonly wsRejected: Counter<'reason'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: OrbMetrics;
  }
  interface FastifyRequest {
    startedAt: bigint;
  }
}

export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: { pod: string }) => {
    const registry = new Registry();
    registry.setDefaultLabels({ pod: opts.pod });
    // Default metrics carry the event-loop lag and utilisation the issue asks for.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });

    const http = new Histogram({
      name: 'orb_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    new Gauge({
      name: 'orb_active_sockets',
      help: 'WebSockets open on this replica',
      registers: [registry],
      collect() {
        this.set(app.liveSessions.socketCount());
      },
    });
    new Gauge({
      name: 'orb_active_sessions',
      help: 'Sessions with a WebSocket on this replica',
      registers: [registry],
      collect() {
        this.set(app.liveSessions.sessionCount());
      },
    });
    new Gauge({
      // The OrbReplicaHeartbeatMissing alert compares this with the Deployment's available replicas.
      name: 'orb_replicas_alive',
      help: 'Replicas whose heartbeat is live in the vault (as GET /v1/replicas lists them)',
      registers: [registry],
      async collect() {
        const live = await app.heartbeat.list().catch(() => undefined);
        if (live) this.set(live.length);
      },
    });
    new Gauge({
      name: 'orb_draining',
      help: '1 while this replica drains',
      registers: [registry],
      collect() {
        this.set(app.drain.draining ? 1 : 0);
      },
    });
    const busLag = new Histogram({
      name: 'orb_bus_lag_seconds',
      help: 'Time from an event entering the vault to its forwarding to a client',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    const eventsForwarded = new Counter({
      name: 'orb_events_forwarded_total',
      help: 'Turn events sent to WebSocket clients',
      registers: [registry],
    });
    const turns = new Counter({
      name: 'orb_turns_total',
      help: 'Turns by mode and outcome',
      labelNames: ['mode', 'outcome'] as const,
      registers: [registry],
    });
    const wsRejected = new Counter({
      name: 'orb_ws_rejected_total',
      help: 'WebSockets refused or closed for a client error',
      labelNames: ['reason'] as const,
      registers: [registry],
    });

    app.decorate('metrics', { registry, busLag, eventsForwarded, turns, wsRejected });
    app.decorateRequest('startedAt', BigInt(0));
    app.addHook('onRequest', async (req) => {
      req.startedAt = process.hrtime.bigint();
    });
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      http.observe({ method: req.method, route, status: String(reply.statusCode) }, Number(process.hrtime.bigint() - req.startedAt) / 1e9);
    });

    app.get(
      '/metrics',
      {
        config: { auth: false, rateLimit: false, pressureHandler: () => undefined },
        schema: { response: { 200: { type: 'string' } } },
      },
      async (_req, reply) => {
        reply.type(registry.contentType);
        return registry.metrics();
      },
    );
  },
  { fastify: '5.x', name: 'orb-metrics', dependencies: ['orb-live-sessions', 'orb-drain'] },
);
