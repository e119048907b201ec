/** Gateways for the ORB tests: real apps on real ports over the run's real Redis. */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { loadEnv } from '../../../services/config/env';
import { ORB_ENV } from '../../../services/config/orb';
import { VAULT_ENV } from '../../../services/config/vault';
import { buildApp, OrbAppOptions } from '../../../services/orb/app';
import { testRedisUrl } from '../../support/vault';
import { waitUntil } from '../../support/wait';

export const KEYS = {
  alice: 'alice-key-0123456789abcdef',
  bob: 'bob-key-0123456789abcdef00',
  carol: 'carol-key-0123456789abcdef',
} as const;

/** ORB_API_KEYS as a Secret would hold it: alice in plain form, bob and carol as digests. */
export const API_KEYS_ENV = [
  `alice:${KEYS.alice}`,
  `bob:sha256:${createHash('sha256').update(KEYS.bob).digest('hex')}`,
  `carol:sha256:${createHash('sha256').update(KEYS.carol).digest('hex')}`,
].join(',');

export const auth = (who: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[who]}` });

export function gatewayEnv(prefix: string, pod: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl(),
    VAULT_KEY_PREFIX: prefix,
    POD_NAME: pod,
    ORB_API_KEYS: API_KEYS_ENV,
    // Event-loop pressure is off: a loaded 2-core CI box must not turn test requests into 503s.
    LOG_LEVEL: 'silent',
    ORB_VAD: 'false',
    ORB_MAX_EVENT_LOOP_DELAY_MS: '0',
    ORB_HEARTBEAT_MS: '200',
    ORB_HEARTBEAT_TTL_MS: '2000',
    ORB_TURN_DEADLINE_MS: '1500',
    ...extra,
  };
}

export async function makeApp(
  prefix: string,
  pod: string,
  extra: Record<string, string> = {},
  opts: Partial<OrbAppOptions> = {},
): Promise<FastifyInstance> {
  const env = gatewayEnv(prefix, pod, extra);
  return buildApp({ config: loadEnv(ORB_ENV, env), vault: loadEnv(VAULT_ENV, env), logger: false, tailBlockMs: 100, ...opts });
}

export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('no address');
  return `127.0.0.1:${addr.port}`;
}

/** test/support/wait.ts's waitUntil with the argument order the orb tests use. */
export function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  return waitUntil(what, check, timeoutMs, 25);
}

export interface WsMessage {
  type: string;
  seq?: number;
  [k: string]: unknown;
}

/** A WebSocket client that records every message and its close. */
export class Client {
  readonly messages: WsMessage[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  /** HTTP status when the upgrade was refused. */
  refusedStatus: number | null = null;
  refusedBody = '';
  readonly ws: WebSocket;

  constructor(hostPort: string, path: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(`ws://${hostPort}${path}`, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (req, res) => {
        this.refusedStatus = res.statusCode ?? 0;
        res.on('data', (d: Buffer) => {
          this.refusedBody += d.toString();
        });
        // With this listener ws leaves the refused request open; end it so no socket outlives the test.
        res.on('end', () => {
          req.destroy();
          reject(new Error(`refused ${res.statusCode}`));
        });
      });
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve();
      });
      this.ws.once('unexpected-response', (_req, res) => res.on('end', () => resolve()));
    });
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) this.messages.push(JSON.parse(data.toString()));
    });
    this.ws.on('error', () => undefined);
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  seqs(): number[] {
    return this.messages.filter((m) => typeof m.seq === 'number').map((m) => m.seq as number);
  }

  async next(pred: (m: WsMessage) => boolean, what: string, from = 0): Promise<WsMessage> {
    return waitFor(() => this.messages.slice(from).find(pred), what);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    await this.closed;
  }
}

export async function seedIdentity(redis: import('ioredis').default, prefix: string, version = '1.12'): Promise<void> {
  await redis.set(`${prefix}identity:seed`, JSON.stringify({ name: 'CaleonGenesis', version }));
  await redis.set(`${prefix}identity:version`, version);
}

export interface HttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): any;
}

/**
 * The HTTP contract through `app.inject` (light-my-request): the full Fastify request path (hooks,
 * parsers, serializers, error handler) with no socket. jest.config.js turns the ESM-only `cookie`
 * it needs into CommonJS. Tests of sockets themselves (WebSocket, drain, timeouts, several
 * replicas, load shedding) use `http` below on a listening server instead.
 */
export async function inject(
  app: FastifyInstance,
  opts: { method?: string; url: string; headers?: Record<string, string>; payload?: unknown },
): Promise<HttpResult> {
  const res = await app.inject({
    method: (opts.method ?? 'GET') as 'GET',
    url: opts.url,
    headers: opts.headers,
    payload: opts.payload as string | Buffer | object | undefined,
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return { statusCode: res.statusCode, headers, body: res.body, json: () => JSON.parse(res.body) };
}

/** A real HTTP request (fetch) to a listening server. */
export async function http(
  hostPort: string,
  opts: { method?: string; url: string; headers?: Record<string, string>; payload?: unknown },
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Buffer | undefined;
  if (Buffer.isBuffer(opts.payload) || typeof opts.payload === 'string') body = opts.payload;
  else if (opts.payload !== undefined) {
    body = JSON.stringify(opts.payload);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`http://${hostPort}${opts.url}`, { method: opts.method ?? 'GET', headers, body });
  const text = await res.text();
  return {
    statusCode: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    body: text,
    json: () => JSON.parse(text),
  };
}
