/**
 * The WebSockets this replica holds, and the cluster-wide cap on sockets per API key: each socket
 * takes a lease in `orb:sockets:{keyId}` (zset, score = lease expiry) that the heartbeat renews, so
 * a replica that dies stops counting once its leases lapse, without anyone cleaning up after it.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { fcall } from '../acp/functions';

export interface LiveSocket {
  readonly id: string;
  readonly keyId: string;
  sessionId: string | null;
  /** Highest seq delivered to this client; the resume hint on a 1012 close. */
  lastSeq: number;
  readonly ws: WebSocket;
}

declare module 'fastify' {
  interface FastifyInstance {
    liveSessions: {
      acquire(keyId: string, socketId: string): Promise<boolean>;
      add(s: LiveSocket): void;
      remove(s: LiveSocket): Promise<void>;
      all(): LiveSocket[];
      socketCount(): number;
      sessionCount(): number;
      renewLeases(expiresAt: number): Promise<void>;
    };
  }
}

export const liveSessionsPlugin = fp(
  async (app: FastifyInstance, opts: { pod: string; maxSocketsPerKey: number; leaseMs: number }) => {
    const { redis, prefix } = app.vault;
    const sockets = new Map<string, LiveSocket>();
    const leaseKey = (keyId: string) => `${prefix}orb:sockets:${keyId}`;
    const member = (socketId: string) => `${opts.pod}:${socketId}`;

    app.decorate('liveSessions', {
      async acquire(keyId: string, socketId: string) {
        const now = Date.now();
        // Atomic "prune expired, check count, add": two replicas racing for the last slot cannot both win.
        const ok = await fcall<number>(
          redis,
          'orb_socket_acquire',
          [leaseKey(keyId)],
          [now, now + opts.leaseMs, opts.maxSocketsPerKey, member(socketId)],
        );
        return ok === 1;
      },
      add(s: LiveSocket) {
        sockets.set(s.id, s);
      },
      async remove(s: LiveSocket) {
        if (!sockets.delete(s.id)) return;
        await redis.zrem(leaseKey(s.keyId), member(s.id)).catch((err) => app.log.warn({ err }, 'socket lease release failed'));
      },
      all: () => [...sockets.values()],
      socketCount: () => sockets.size,
      sessionCount: () => new Set([...sockets.values()].map((s) => s.sessionId).filter(Boolean)).size,
      async renewLeases(expiresAt: number) {
        if (!sockets.size) return;
        const m = redis.multi();
        for (const s of sockets.values()) m.zadd(leaseKey(s.keyId), 'XX', expiresAt, member(s.id)).pexpireat(leaseKey(s.keyId), expiresAt);
        await m.exec();
      },
    });
  },
  { fastify: '5.x', name: 'orb-live-sessions', dependencies: ['orb-vault'] },
);
