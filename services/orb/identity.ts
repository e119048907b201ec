/**
 * The seed-vault identity document (`identity:seed`, `identity:version`), written only by the seed
 * Job. Replicas read it at start and re-read it when the version changes (checked every period).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

export interface IdentityState {
  version: string | null;
  document: unknown;
  loadedAt: string | null;
  refresh(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    identity: IdentityState;
  }
}

export const identityPlugin = fp(
  async (app: FastifyInstance, opts: { refreshMs: number }) => {
    const { redis, prefix } = app.vault;
    const state: IdentityState = {
      version: null,
      document: null,
      loadedAt: null,
      async refresh() {
        const version = await redis.get(`${prefix}identity:version`);
        if (version === null || version === state.version) return;
        const raw = await redis.get(`${prefix}identity:seed`);
        if (raw === null) return;
        try {
          state.document = JSON.parse(raw);
        } catch (err) {
          app.log.error({ err, version }, 'identity:seed is not JSON; keeping the previous document');
          return;
        }
        state.version = version;
        state.loadedAt = new Date().toISOString();
        app.log.info({ version }, 'identity loaded');
      },
    };
    let running: Promise<void> | null = null;
    // One refresh at a time: the interval and onReady may overlap on a slow vault.
    const tick = () =>
      (running ??= state
        .refresh()
        .catch((err) => app.log.warn({ err }, 'identity refresh failed'))
        .finally(() => {
          running = null;
        }));
    const timer = setInterval(tick, opts.refreshMs);
    timer.unref();
    app.decorate('identity', state);
    app.addHook('onReady', async () => {
      await tick();
    });
    app.addHook('onClose', async () => clearInterval(timer));
  },
  { fastify: '5.x', name: 'orb-identity', dependencies: ['orb-vault'] },
);
