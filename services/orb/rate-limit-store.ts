/**
 * The @fastify/rate-limit store over the vault's `orb_rate_limit` function: the plugin's own Redis
 * store defines an EVAL script, which the services' vault users may not run (they FCALL only).
 */
import type Redis from 'ioredis';
import { fcall } from '../acp/functions';

type Callback = (err: Error | null, res?: { current: number; ttl: number }) => void;

/**
 * One step of the shared fixed-window counter (`orb_rate_limit`): the count including this request
 * and the window's remaining ms. Called by the plugin's store and by the session read's hot path
 * (services/orb/session-read.ts), which issues it in the same pipeline as its reads.
 */
export function rateLimitIncr(
  redis: Redis,
  key: string,
  timeWindow: number,
  max: number,
  continueExceeding = false,
  exponentialBackoff = false,
): Promise<{ current: number; ttl: number }> {
  return fcall<[number, number]>(
    redis,
    'orb_rate_limit',
    [key],
    [timeWindow, max, String(continueExceeding), String(exponentialBackoff)],
  ).then(([current, ttl]) => ({ current: Number(current), ttl: Number(ttl) }));
}

/** A store class bound to one client and key namespace, as the plugin's `store` option expects. */
export function vaultRateLimitStore(redis: Redis, nameSpace: string) {
  return class VaultRateLimitStore {
    private readonly continueExceeding: boolean;
    private readonly exponentialBackoff: boolean;
    constructor(
      params: { continueExceeding?: boolean; exponentialBackoff?: boolean } = {},
      private readonly key = nameSpace,
    ) {
      this.continueExceeding = params.continueExceeding ?? false;
      this.exponentialBackoff = params.exponentialBackoff ?? false;
    }

    // The plugin passes the window and the max of the route (declared optional in its types).
    incr(id: string, cb: Callback, timeWindow = 60_000, max = 1): void {
      rateLimitIncr(redis, this.key + id, timeWindow, max, this.continueExceeding, this.exponentialBackoff).then(
        (res) => cb(null, res),
        (err: Error) => cb(err),
      );
    }

    // The plugin's types omit `routeInfo`, which it always passes (RedisStore keys children by it).
    child(routeOptions: object) {
      const o = routeOptions as { continueExceeding?: boolean; exponentialBackoff?: boolean; routeInfo?: { method: string; url: string } };
      return new VaultRateLimitStore(o, `${this.key}${o.routeInfo?.method ?? ''}${o.routeInfo?.url ?? ''}-`);
    }
  };
}
