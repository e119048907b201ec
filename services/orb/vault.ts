/** The gateway's vault connection, decorated once and quit on close (which flushes queued writes). */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type Redis from 'ioredis';
import { connectVault, VaultConfig } from '../acp/vault';
import { ORB_ERR_VAULT_UNAVAILABLE } from './errors';

declare module 'fastify' {
  interface FastifyInstance {
    vault: { redis: Redis; prefix: string; readonly available: boolean; ping(): Promise<boolean> };
  }
}

export const vaultPlugin = fp(
  async (app: FastifyInstance, opts: { config: VaultConfig; connectionName: string }) => {
    const redis = connectVault(opts.config, {
      connectionName: opts.connectionName,
      // Fail requests fast while the vault is away instead of queueing them without bound.
      options: { maxRetriesPerRequest: 2, enableOfflineQueue: true },
    });
    // Up from 'ready' until the connection drops: while it is down, requests get 503 at once instead of
    // each waiting out ioredis' reconnect attempts (seconds per command once the backoff has grown).
    let up = false;
    redis.on('ready', () => {
      up = true;
    });
    redis.on('close', () => {
      up = false;
    });
    redis.on('error', (err) => app.log.warn({ err: err.message }, 'vault connection error'));
    app.decorate('vault', {
      redis,
      prefix: opts.config.keyPrefix,
      get available() {
        return up;
      },
      async ping() {
        if (!up) return false;
        try {
          return (await redis.ping()) === 'PONG';
        } catch {
          return false;
        }
      },
    });
    // Probes (auth: false) still answer: /readyz reports the vault as down, /livez stays alive.
    app.addHook('onRequest', async (req) => {
      if (!up && req.routeOptions.config?.auth !== false) throw new ORB_ERR_VAULT_UNAVAILABLE('not connected; retry shortly');
    });
    // QUIT waits for replies to every command already sent: the "flush to the vault" of the drain.
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { fastify: '5.x', name: 'orb-vault' },
);

const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const DOWN_REPLIES = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|BUSY)\b/;

/**
 * True when an error says the vault cannot be reached or cannot serve right now (ioredis gave up
 * retrying, the connection is closed, the server is loading or a read-only replica): a 503 the
 * client may retry, never a 500.
 */
export function isVaultUnavailable(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  // Delivery after replication held events back (services/acp/replication.ts): no replica has them yet.
  if (e.name === 'ReplicationLagError') return true;
  // A bounded read whose connection hung (services/acp/blocking.ts): the vault is not serving.
  if (e.name === 'BlockingReadStuckError') return true;
  if (typeof e.code === 'string' && DOWN_CODES.has(e.code)) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  if (e.name === 'ReplyError') return DOWN_REPLIES.test(msg);
  return msg === 'Connection is closed.' || msg.startsWith("Stream isn't writeable") || msg === 'Command timed out';
}
