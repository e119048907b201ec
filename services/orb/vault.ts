/** The gateway's vault connection, decorated once and quit on close (which flushes queued writes). */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type Redis from 'ioredis';
import { connectVault, VaultConfig } from '../acp/vault';

declare module 'fastify' {
  interface FastifyInstance { vault: { redis: Redis; prefix: string; ping(): Promise<boolean> } }
}

export const vaultPlugin = fp(async (app: FastifyInstance, opts: { config: VaultConfig; connectionName: string }) => {
  const redis = connectVault(opts.config, {
    connectionName: opts.connectionName,
    // Fail requests fast while the vault is away instead of queueing them without bound.
    options: { maxRetriesPerRequest: 2, enableOfflineQueue: true },
  });
  redis.on('error', (err) => app.log.warn({ err: err.message }, 'vault connection error'));
  app.decorate('vault', {
    redis,
    prefix: opts.config.keyPrefix,
    async ping() {
      try { return (await redis.ping()) === 'PONG'; } catch { return false; }
    },
  });
  // QUIT waits for replies to every command already sent: the "flush to the vault" of the drain.
  app.addHook('onClose', async () => { await redis.quit().catch(() => redis.disconnect()); });
}, { fastify: '5.x', name: 'orb-vault' });
