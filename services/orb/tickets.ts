/**
 * WebSocket tickets: a browser cannot put `Authorization` on a WebSocket, and a key in the URL ends
 * up in proxy and browser logs. `POST /v1/session/tickets` (authenticated like any route) returns a
 * short-lived ticket; `GET /v1/session?ticket=…` redeems it once. The vault holds only its digest, so
 * any replica redeems it and a vault dump cannot replay it.
 */
import { createHash, randomBytes } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    wsTickets: {
      /** A new ticket for `keyId`, valid `ttlMs`. */
      issue(keyId: string): Promise<{ ticket: string; expiresInMs: number }>;
      /** The key id a ticket was issued to, at most once; undefined when unknown, expired or spent. */
      redeem(ticket: string): Promise<string | undefined>;
    };
  }
}

export const TICKET_RE = /^[A-Za-z0-9_-]{43}$/;

export const ticketsPlugin = fp(
  async (app: FastifyInstance, opts: { ttlMs: number; prefix: string }) => {
    const key = (ticket: string) => `${opts.prefix}orb:ticket:${createHash('sha256').update(ticket).digest('hex')}`;
    app.decorate('wsTickets', {
      async issue(keyId: string) {
        const ticket = randomBytes(32).toString('base64url');
        await app.vault.redis.set(key(ticket), keyId, 'PX', opts.ttlMs);
        return { ticket, expiresInMs: opts.ttlMs };
      },
      async redeem(ticket: string) {
        if (!TICKET_RE.test(ticket)) return undefined;
        // GET and DEL in one transaction: of two replicas redeeming the same ticket, one wins.
        const res = await app.vault.redis.multi().get(key(ticket)).del(key(ticket)).exec();
        const [err, keyId] = res?.[0] ?? [null, null];
        if (err) throw err;
        return typeof keyId === 'string' ? keyId : undefined;
      },
    });

    app.post(
      '/v1/session/tickets',
      {
        schema: {
          body: { type: ['object', 'null'], additionalProperties: false, properties: {} },
          response: {
            201: {
              type: 'object',
              required: ['ticket', 'expires_in_ms', 'websocket'],
              properties: {
                ticket: { type: 'string' },
                expires_in_ms: { type: 'integer' },
                websocket: { type: 'string' },
              },
            },
          },
        },
      },
      async (req, reply) => {
        const t = await app.wsTickets.issue(req.apiKeyId);
        reply.status(201).header('cache-control', 'no-store');
        return { ticket: t.ticket, expires_in_ms: t.expiresInMs, websocket: `/v1/session?ticket=${t.ticket}` };
      },
    );
  },
  { fastify: '5.x', name: 'orb-ws-tickets', dependencies: ['orb-vault', 'orb-auth'] },
);
