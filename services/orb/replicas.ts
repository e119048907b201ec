/**
 * Replica heartbeats: `orb:replica:{pod}` (JSON, PX ttl) plus an index `orb:replica:index` (zset,
 * score = expiry) so /v1/replicas never SCANs the keyspace. A replica that stops beating drops out
 * when its key expires; the index is pruned lazily.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

export interface ReplicaStatus {
  readonly pod: string;
  readonly version: string;
  readonly identity_version: string | null;
  readonly sessions: number;
  readonly sockets: number;
  readonly draining: boolean;
  readonly started_at: string;
  readonly updated_at: string;
}

export interface HeartbeatOptions {
  readonly pod: string;
  readonly version: string;
  readonly periodMs: number;
  readonly ttlMs: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    heartbeat: { beat(): Promise<void>; list(): Promise<ReplicaStatus[]>; remove(): Promise<void> };
  }
}

export const heartbeatPlugin = fp(
  async (app: FastifyInstance, opts: HeartbeatOptions) => {
    const { redis, prefix } = app.vault;
    const key = `${prefix}orb:replica:${opts.pod}`;
    const indexKey = `${prefix}orb:replica:index`;
    const startedAt = new Date().toISOString();
    let stopped = false;

    async function beat(): Promise<void> {
      if (stopped) return;
      const now = Date.now();
      const status: ReplicaStatus = {
        pod: opts.pod,
        version: opts.version,
        identity_version: app.identity.version,
        sessions: app.liveSessions.sessionCount(),
        sockets: app.liveSessions.socketCount(),
        draining: app.drain.draining,
        started_at: startedAt,
        updated_at: new Date(now).toISOString(),
      };
      await redis
        .multi()
        .set(key, JSON.stringify(status), 'PX', opts.ttlMs)
        .zadd(indexKey, now + opts.ttlMs, opts.pod)
        .zremrangebyscore(indexKey, '-inf', now)
        .exec();
      // Socket leases (the per-key cap) live as long as this replica keeps beating.
      await app.liveSessions.renewLeases(now + opts.ttlMs);
    }

    async function list(): Promise<ReplicaStatus[]> {
      const pods = await redis.zrangebyscore(indexKey, Date.now(), '+inf');
      if (!pods.length) return [];
      const docs = await redis.mget(pods.map((p) => `${prefix}orb:replica:${p}`));
      return docs
        .filter((d): d is string => d !== null)
        .map((d) => JSON.parse(d) as ReplicaStatus)
        .sort((a, b) => a.pod.localeCompare(b.pod));
    }

    async function remove(): Promise<void> {
      stopped = true;
      await redis.multi().del(key).zrem(indexKey, opts.pod).exec();
    }

    const timer = setInterval(() => {
      beat().catch((err) => app.log.warn({ err }, 'heartbeat failed'));
    }, opts.periodMs);
    timer.unref();

    app.decorate('heartbeat', { beat, list, remove });
    // A vault not reachable yet (its DNS name not resolving, a restart) must not stop the replica from
    // starting: it serves /livez, says not ready in /readyz, and beats once the vault answers.
    app.addHook('onReady', async () => {
      await beat().catch((err) => app.log.warn({ err: (err as Error).message }, 'first heartbeat failed; the vault is not reachable yet'));
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      await remove().catch((err) => app.log.warn({ err }, 'heartbeat removal failed'));
    });
  },
  { fastify: '5.x', name: 'orb-heartbeat', dependencies: ['orb-vault', 'orb-identity', 'orb-drain', 'orb-live-sessions'] },
);
