/**
 * API keys: provisioned from ORB_API_KEYS (a Secret), held only as sha256 digests, and looked up
 * by the digest of the presented bearer token, so no plaintext key lives in the process.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ORB_ERR_UNAUTHORIZED } from './errors';

export interface ApiKeyEntry {
  readonly id: string;
  readonly sha256: string;
}

export class ApiKeyRing {
  private readonly byDigest = new Map<string, { id: string; digest: Buffer }>();

  constructor(keys: readonly ApiKeyEntry[]) {
    for (const k of keys) this.byDigest.set(k.sha256, { id: k.id, digest: Buffer.from(k.sha256, 'hex') });
  }

  /** The key id a bearer token belongs to, or undefined. */
  identify(token: string): string | undefined {
    const digest = createHash('sha256').update(token).digest();
    const hit = this.byDigest.get(digest.toString('hex'));
    // The map lookup already matched; the constant-time compare guards against a future change to a prefix index.
    return hit && timingSafeEqual(hit.digest, digest) ? hit.id : undefined;
  }

  /** Key id of a request's `Authorization: Bearer <key>` header, or undefined. */
  fromHeader(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? this.identify(m[1]) : undefined;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    apiKeys: ApiKeyRing;
  }
  interface FastifyRequest {
    apiKeyId: string;
  }
  interface FastifyContextConfig {
    auth?: boolean;
    /** Also accept `?token=<key>`: browsers cannot set headers on a WebSocket. */
    queryToken?: boolean;
    /** Accept `?ticket=<single-use ticket>` from POST /v1/session/tickets (keeps the key out of URLs). */
    ticket?: boolean;
  }
}

/** Every route needs a key unless its config says `auth: false` (probes, metrics). */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { keys: readonly ApiKeyEntry[] }) => {
    app.decorate('apiKeys', new ApiKeyRing(opts.keys));
    app.decorateRequest('apiKeyId', '');
    // preValidation, after the rate limiter's onRequest, so failed guesses count against the caller's IP.
    app.addHook('preValidation', async (req: FastifyRequest) => {
      if (req.routeOptions.config?.auth === false) return;
      // Already identified by the route's own hook from these same credentials (session-read.ts); only code sets this.
      if (req.apiKeyId) return;
      const ticket = !req.headers.authorization ? queryParam(req, 'ticket') : undefined;
      if (ticket !== undefined) {
        const owner = await app.wsTickets.redeem(ticket);
        if (!owner) throw new ORB_ERR_UNAUTHORIZED('ticket unknown, expired or already used');
        req.apiKeyId = owner;
        return;
      }
      const id = keyIdOf(app.apiKeys, req);
      if (!id) throw new ORB_ERR_UNAUTHORIZED(presented(req) ? 'key not recognised' : 'no Authorization: Bearer header');
      req.apiKeyId = id;
    });
  },
  { fastify: '5.x', name: 'orb-auth' },
);

function queryParam(req: FastifyRequest, name: 'token' | 'ticket'): string | undefined {
  const allowed = name === 'token' ? req.routeOptions.config?.queryToken : req.routeOptions.config?.ticket;
  if (!allowed) return undefined;
  const t = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof t === 'string' && t ? t : undefined;
}

const queryToken = (req: FastifyRequest) => queryParam(req, 'token');

function presented(req: FastifyRequest): boolean {
  return Boolean(req.headers.authorization || queryToken(req));
}

/** Key id of the request's credentials (header, or `token` query where the route allows it). */
export function keyIdOf(ring: ApiKeyRing, req: FastifyRequest): string | undefined {
  if (req.headers.authorization) return ring.fromHeader(req.headers.authorization);
  const t = queryToken(req);
  return t ? ring.identify(t) : undefined;
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
