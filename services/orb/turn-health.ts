/**
 * What a gateway needs to take a turn beyond its own process: the vault's FUNCTION library, and
 * job queues that can take a job (a queue at its cap refuses every turn with ORB_ERR_BUS_BACKLOG,
 * so a replica is not ready while one is). Also runs the turn deadline sweeper: every replica
 * sweeps, and orb_turn_end makes each turn's end exactly-once among them.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { orbFunctionsVersion, ORB_LIBRARY_VERSION, TurnSweeper } from '../acp';

export interface TurnHealth {
  /** Why this replica cannot take a turn now, or null when it can (as of the last check). */
  readonly reason: string | null;
  check(): Promise<string | null>;
  readonly sweeper: TurnSweeper;
}

declare module 'fastify' {
  interface FastifyInstance {
    turnHealth: TurnHealth;
  }
}

export const turnHealthPlugin = fp(
  async (app: FastifyInstance, opts: { intervalMs: number; graceMs: number; queues: readonly string[] }) => {
    const { redis } = app.vault;
    const { keys, events, bus } = app.orb;
    const sweeper = new TurnSweeper(redis, keys, events, { graceMs: opts.graceMs });
    let reason: string | null = 'not checked yet';

    async function check(): Promise<string | null> {
      const version = await orbFunctionsVersion(redis);
      if (version === null) return 'the vault has no orb FUNCTION library: has the seed-vault Job run?';
      if (version < ORB_LIBRARY_VERSION)
        return `the vault's orb FUNCTION library is version ${version}, this build needs ${ORB_LIBRARY_VERSION}`;
      const lengths = await Promise.all(opts.queues.map((q) => redis.xlen(keys.jobs(q))));
      const full = opts.queues.filter((_, i) => lengths[i] >= bus.maxBacklog);
      if (full.length) return `job queue(s) ${full.join(', ')} at the backlog cap (${bus.maxBacklog}): turns are refused until they drain`;
      return null;
    }

    async function tick(): Promise<void> {
      if (!app.vault.available) {
        reason = 'vault not connected';
        return;
      }
      try {
        reason = await check();
        await sweeper.sweep();
      } catch (err) {
        reason = `vault check failed: ${(err as Error).message}`;
        app.log.warn({ err }, 'turn sweep failed; retrying');
      }
    }

    let running: Promise<void> | null = null;
    const timer = setInterval(() => {
      running ??= tick().finally(() => {
        running = null;
      });
    }, opts.intervalMs);
    timer.unref();
    app.decorate('turnHealth', {
      get reason() {
        return reason;
      },
      async check() {
        reason = await check().catch((err: Error) => `vault check failed: ${err.message}`);
        return reason;
      },
      sweeper,
    });
    app.addHook('onReady', async () => {
      if (app.vault.available) await tick();
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      await running;
    });
  },
  { fastify: '5.x', name: 'orb-turn-health', dependencies: ['orb-vault'] },
);
