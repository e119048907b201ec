/**
 * The ORB gateway: a stateless Fastify app. Everything it knows lives in the vault, so any
 * replica serves any client and resumes any session (ARCHITECTURE.md).
 */
import { ACP_QUEUES, coreQueue } from '../contract';
import { STATUS_CODES } from 'node:http';
import Fastify, { FastifyError, FastifyInstance, FastifySchemaCompiler, FastifyServerOptions } from 'fastify';
import Ajv, { type AnySchema } from 'ajv';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyUnderPressure from '@fastify/under-pressure';
import fastifyWebsocket from '@fastify/websocket';
import type { EnvValues } from '../config/env';
import type { ORB_ENV } from '../config/orb';
import type { VaultConfig } from '../acp/vault';
import { vaultKeys } from '../acp/keys';
import { TurnEventStream } from '../acp/events';
import { AcpBus } from '../acp/bus';
import { authPlugin, keyIdOf } from './auth';
import { vaultPlugin } from './vault';
import { identityPlugin } from './identity';
import { liveSessionsPlugin } from './live-sessions';
import { drainPlugin } from './drain';
import { heartbeatPlugin } from './replicas';
import { turnHealthPlugin } from './turn-health';
import { vaultRateLimitStore } from './rate-limit-store';
import { metricsPlugin } from './metrics';
import { EventHub } from './event-hub';
import { DeliveryFence } from '../acp/replication';
import { SessionStore } from './session-store';
import { TurnRunner } from './turns';
import { httpRoutes } from './routes';
import { sessionSocketRoute } from './socket';
import { openAiAudioPlugin } from './plugins/openai-audio';
import { webClientPlugin } from './web';
import { scrubHeaders, scrubUrl } from './redact';
import { capabilitiesFrom } from './audio-params';
import { flatUUID } from './ids';
import { ticketsPlugin } from './tickets';
import { SileroVad } from '../inference/vad';
import * as E from './errors';
import { toOrbError } from './errors';

export type OrbConfig = EnvValues<typeof ORB_ENV>;

export interface OrbAppOptions {
  readonly config: OrbConfig;
  readonly vault: VaultConfig;
  /** pino options, or false for silence (tests). @default - JSON logs at config.logLevel */
  readonly logger?: FastifyServerOptions['logger'];
  /** Where the default (redacting) JSON logs go, e.g. a test capturing them. @default - stdout */
  readonly logStream?: { write(line: string): void };
  /** Extra @fastify/under-pressure options (tests force pressure with tiny limits). */
  readonly underPressure?: Record<string, unknown>;
  /** BLOCK of the replica's event tail, ms. @default 250 */
  readonly tailBlockMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    orb: {
      readonly config: OrbConfig;
      readonly keys: ReturnType<typeof vaultKeys>;
      readonly sessions: SessionStore;
      readonly events: TurnEventStream;
      readonly bus: AcpBus;
      readonly hub: EventHub;
      readonly turns: TurnRunner;
      /** Silero VAD for endpointing, or null when ORB_VAD is off. */
      readonly vad: SileroVad | null;
    };
  }
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Bodies are validated strictly (a JSON `"1"` is not the number 1); querystrings and params are
 * text by nature, so they alone are coerced to the schema's scalar types.
 */
function validatorCompilers(): FastifySchemaCompiler<AnySchema> {
  const strict = new Ajv({ coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: true, strict: false });
  const text = new Ajv({ coerceTypes: true, removeAdditional: false, allErrors: false, useDefaults: true, strict: false });
  return ({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : text).compile(schema as AnySchema) as ReturnType<FastifySchemaCompiler<AnySchema>>;
}

export async function buildApp(opts: OrbAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const logger: FastifyServerOptions['logger'] = opts.logger ?? {
    level: config.logLevel,
    ...(opts.logStream ? { stream: opts.logStream } : {}),
    base: { pod: config.podName, version: config.version },
    serializers: {
      req: (req: { id: string; method: string; url: string; headers: Record<string, unknown>; ip?: string }) => ({
        id: req.id,
        method: req.method,
        url: scrubUrl(req.url),
        headers: scrubHeaders(req.headers),
        remoteAddress: req.ip,
      }),
    },
  };

  const app = Fastify({
    logger,
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : flatUUID();
    },
    return503OnClosing: true,
    // Only the ingress hops' X-Forwarded-For entries are believed: what a client writes there itself changes nothing.
    trustProxy: config.trustProxyHops > 0 ? (_addr: string, hop: number) => hop < config.trustProxyHops : false,
    // A client that drips its headers or body cannot hold a connection: node answers 408 and closes it.
    http: {
      headersTimeout: Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs),
      requestTimeout: config.httpRequestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.httpHeadersTimeoutMs / 4))),
    },
    requestTimeout: config.httpRequestTimeoutMs,
    connectionTimeout: config.httpIdleTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
  });
  app.setValidatorCompiler(validatorCompilers());

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // JSON is UTF-8 (RFC 8259): a body labelled with another charset would be read as something it is not.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(String(req.headers['content-type'] ?? ''))?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(new E.ORB_ERR_UNSUPPORTED_MEDIA(`application/json in charset '${charset.slice(0, 20)}'; JSON is UTF-8`), undefined);
      return;
    }
    jsonParser(req, body as string, done);
  });
  app.addContentTypeParser(
    ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/pcm', 'audio/l16', 'application/octet-stream'],
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );

  app.setNotFoundHandler((req, reply) => {
    const err = new E.ORB_ERR_NOT_FOUND(`${req.method} ${scrubUrl(req.url)}`);
    reply.status(404).send({ statusCode: 404, code: err.code, error: STATUS_CODES[404], message: err.message });
  });
  app.setErrorHandler((raw: FastifyError, req, reply) => {
    const err = toOrbError(raw, config.bodyLimitBytes);
    const status = err.statusCode ?? 500;
    if (status >= 500 && status !== 503 && status !== 504) req.log.error({ err: raw }, 'request failed');
    else req.log.info({ code: err.code, status, msg: err.message }, 'request rejected');
    if (err.code === 'ORB_ERR_VAULT_UNAVAILABLE') reply.header('retry-after', '5');
    // Refused before its body was read (e.g. a bad multipart part): the rest of the body would stall this
    // keep-alive connection for the client's next request, so the connection ends with this answer.
    if (!req.raw.complete) reply.header('connection', 'close');
    reply.status(status).send({ statusCode: status, code: err.code, error: STATUS_CODES[status], message: err.message });
  });

  // One InferenceSession per process; each socket gets its own recurrent state (VadStream), and one
  // scheduler runs the pending windows of all sockets as a single batch per tick. Loaded before
  // under-pressure starts sampling, so the load's event-loop stall is not read as overload.
  const vad = config.vad
    ? await SileroVad.load({
        modelPath: config.vadModelPath || undefined,
        intraOpThreads: 1,
        interOpThreads: 1,
        batch: config.vadBatch ? { maxBatch: config.vadBatchMax, tickMs: config.vadBatchTickMs } : false,
      })
    : null;
  app.addHook('onClose', async () => {
    await vad?.dispose();
  });

  await app.register(vaultPlugin, { config: opts.vault, connectionName: `orb-core:${config.podName}` });
  const keys = vaultKeys(opts.vault.keyPrefix);
  const { redis } = app.vault;

  await app.register(fastifyUnderPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    maxRssBytes: config.maxRssBytes,
    retryAfter: 5,
    customError: E.ORB_ERR_UNDER_PRESSURE,
    ...opts.underPressure,
  });
  await app.register(fastifyRateLimit, {
    // The vault's orb_rate_limit function (services FCALL, never EVAL), shared by every replica.
    store: vaultRateLimitStore(redis, keys.rateLimit('')),
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    // Limits follow the API key wherever it connects; unauthenticated guesses count per client IP.
    // (apiKeyId is set once auth ran: a WebSocket's turns, authenticated by header or ticket, draw on the same budget.)
    keyGenerator: (req) => req.apiKeyId || (keyIdOf(app.apiKeys, req) ?? `ip:${req.ip}`),
    // If the vault is away, requests fail on the vault anyway; do not turn that into 500s here.
    skipOnError: true,
    errorResponseBuilder: (_req, ctx) => Object.assign(new E.ORB_ERR_TOO_MANY_REQUESTS(ctx.after), { statusCode: ctx.statusCode }),
  });
  await app.register(authPlugin, { keys: config.apiKeys });
  await app.register(ticketsPlugin, { ttlMs: config.wsTicketTtlMs, prefix: opts.vault.keyPrefix });
  await app.register(liveSessionsPlugin, {
    pod: config.podName,
    maxSocketsPerKey: config.maxSocketsPerKey,
    leaseMs: config.heartbeatTtlMs,
  });
  await app.register(drainPlugin);
  await app.register(identityPlugin, { refreshMs: config.heartbeatMs });
  await app.register(heartbeatPlugin, {
    pod: config.podName,
    version: config.version,
    periodMs: config.heartbeatMs,
    ttlMs: config.heartbeatTtlMs,
  });
  await app.register(metricsPlugin, { pod: config.podName });

  // Delivery after replication (services/acp/replication.ts): on by default with a replicated vault.
  const waitOn = config.deliveryWait === 'on' || (config.deliveryWait === 'auto' && opts.vault.sentinels.length > 0);
  const fence = new DeliveryFence({
    key: keys.orbFence(config.podName),
    replicas: waitOn ? config.deliveryWaitReplicas : 0,
    timeoutMs: config.deliveryWaitTimeoutMs,
    replicaGraceMs: config.deliveryWaitGraceMs,
  });
  const events = new TurnEventStream(redis, keys, { retentionS: config.sessionTtlS, fence });
  const bus = new AcpBus(redis, keys);
  const hub = new EventHub(redis, keys, events, {
    fence,
    blockMs: opts.tailBlockMs ?? 250,
    onError: (err) => app.log.warn({ err }, 'event tail read failed; retrying'),
  });
  const sessions = new SessionStore(redis, opts.vault.keyPrefix, config.sessionTtlS);
  const turns = new TurnRunner({
    redis,
    keys,
    events,
    bus,
    metrics: app.metrics,
    deadlineMs: config.turnDeadlineMs,
    ttlS: config.sessionTtlS,
    cores: config.cores,
    endWaitMs: config.sweepGraceMs + config.sweepIntervalMs + 1000,
  });
  app.decorate('orb', { config, keys, sessions, events, bus, hub, turns, vad });
  // Runs before the vault's onClose (hooks close in reverse order), so the tails stop first.
  app.addHook('onClose', async () => {
    await hub.close();
    await events.close();
  });

  // Queues a turn's first jobs go to: at their cap, turns are refused, so /readyz says not ready.
  await app.register(turnHealthPlugin, {
    intervalMs: config.sweepIntervalMs,
    graceMs: config.sweepGraceMs,
    queues: [ACP_QUEUES.cali, ACP_QUEUES.whisperx, ...Array.from({ length: config.cores }, (_, n) => coreQueue(n))],
  });

  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.maxFrameBytes },
    // Plain app.close() also tells clients to reconnect elsewhere (the drain does it earlier).
    preClose: async function preClose() {
      await app.drain.closeSockets();
    },
    // ws already answers protocol errors (e.g. a frame over maxPayload: close 1009); do not cut that close frame off.
    errorHandler: (err, socket, req) => {
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('WS_ERR_')) {
        req.log.info({ code, msg: err.message }, 'websocket protocol error');
        return;
      }
      req.log.warn({ err }, 'websocket error');
      socket.terminate();
    },
  });
  await app.register(httpRoutes);
  await app.register(sessionSocketRoute);
  // OpenAI-shaped /v1/audio/transcriptions and /v1/audio/speech (speech workers); auth and rate limit apply as everywhere.
  await app.register(openAiAudioPlugin, { bus, events, redis, keys, capabilities: capabilitiesFrom(config.asrLanguages) });
  await app.register(webClientPlugin, { root: config.webRoot });
  return app;
}

export { toOrbError } from './errors';
