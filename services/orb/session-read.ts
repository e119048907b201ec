/**
 * The hot read, GET /v1/sessions/:id, in one vault round trip (issue #17 item 2). In the route's
 * own onRequest hook, a request with a known key issues, in the same tick and so in one
 * auto-pipelined write: the shared rate-limit step (`orb_rate_limit`, the very counter the
 * @fastify/rate-limit store uses, so the budget is still one per key across every replica and every
 * route, exactly: the vault's INCR is the only arbiter), the session hash, the event seq, the
 * events page and the session's remaining TTL. The handler only waits for what is already in flight;
 * the TTL is written only when it has fallen below SessionStore.touchBelowMs.
 *
 * Everything else keeps the plugin's own path, so answers stay byte-for-byte those of every other
 * route: a request without a known key is counted per client IP by the plugin's limiter (then
 * refused by auth), and a request over its key's budget is handed to the same limiter, which
 * answers the 429 (ORB_ERR_TOO_MANY_REQUESTS, x-ratelimit-* and retry-after headers).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TurnEvent } from '../acp';
import { keyIdOf } from './auth';
import { rateLimitIncr } from './rate-limit-store';
import { SESSION_ID_RE, type SessionRecord } from './session-store';

export interface SessionRead {
  /** What was read: the events after `afterSeq`, at most `limit`. */
  readonly sid: string;
  readonly afterSeq: number;
  readonly limit: number;
  readonly session: Promise<SessionRecord | undefined>;
  readonly lastSeq: Promise<number>;
  readonly events: Promise<TurnEvent[]>;
  readonly remainingMs: Promise<number>;
}

declare module 'fastify' {
  interface FastifyRequest {
    sessionRead: SessionRead | null;
  }
}

const DEFAULT_LIMIT = 1000;

/** Issues every read of a session page at once (one pipeline with whatever else this tick sends). */
export function startSessionRead(app: FastifyInstance, sid: string, owner: string, afterSeq: number, limit: number): SessionRead {
  const { sessions, events } = app.orb;
  const read: SessionRead = {
    sid,
    afterSeq,
    limit,
    session: sessions.get(sid, owner),
    lastSeq: events.lastSeq(sid),
    events: events.read(sid, afterSeq, limit),
    remainingMs: sessions.remainingMs(sid),
  };
  // A read abandoned (429, bad query) must not surface as an unhandled rejection.
  for (const p of [read.session, read.lastSeq, read.events, read.remainingMs]) p.catch(() => undefined);
  return read;
}

/** The query as validation will see it, or undefined when it will be refused anyway (then nothing is read early). */
function queryOf(req: FastifyRequest): { afterSeq: number; limit: number } | undefined {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const a = q.after_seq;
  const l = q.limit;
  if (a !== undefined && a !== '' && (typeof a !== 'string' || !/^\d{1,15}$/.test(a))) return undefined;
  if (l !== undefined && (typeof l !== 'string' || !/^\d{1,5}$/.test(l) || Number(l) < 1 || Number(l) > 10_000)) return undefined;
  return { afterSeq: a ? Number(a) : 0, limit: l === undefined ? DEFAULT_LIMIT : Number(l) };
}

/** The route's onRequest hook (the route has `rateLimit: false`: this hook is its limiter). */
export function sessionReadHook(app: FastifyInstance) {
  const { config, keys } = app.orb;
  const { redis } = app.vault;
  const limiter = app.rateLimit();
  return async function sessionReadOnRequest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const keyId = keyIdOf(app.apiKeys, req);
    if (!keyId) {
      await limiter.call(app, req, reply);
      return;
    }
    // Auth's own hook sees the id and does not hash the token a second time.
    req.apiKeyId = keyId;
    const counted = rateLimitIncr(redis, keys.rateLimit('') + keyId, config.rateLimitWindowMs, config.rateLimitMax);
    const sid = (req.params as { id?: unknown }).id;
    const q = queryOf(req);
    if (typeof sid === 'string' && SESSION_ID_RE.test(sid) && q) req.sessionRead = startSessionRead(app, sid, keyId, q.afterSeq, q.limit);
    let rl: { current: number; ttl: number };
    try {
      rl = await counted;
    } catch {
      return; // skipOnError, as the plugin is configured: the read itself reports a vault that is away
    }
    const max = config.rateLimitMax;
    if (rl.current > max) {
      // Over budget: the plugin's own limiter answers (its count for this key is already past max,
      // so this second step changes nothing but the answer's source), unless the window just rolled.
      await limiter.call(app, req, reply);
      return;
    }
    reply.header('x-ratelimit-limit', max);
    reply.header('x-ratelimit-remaining', Math.max(0, max - rl.current));
    reply.header('x-ratelimit-reset', Math.ceil(rl.ttl / 1000));
  };
}
