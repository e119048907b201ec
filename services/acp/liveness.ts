/**
 * Consumer liveness, as orb-core replicas report theirs: each worker beats `acp:alive:<queue>:<pod>`
 * (PX ttl) and its score in the index `acp:alive:<queue>` (zset, score = expiry) while its consumer
 * can take work. A killed pod stops beating and drops out when its score passes, so CALI learns
 * that quorum cannot be reached from the heartbeats, without waiting for the vote deadline.
 */
import type Redis from 'ioredis';
import type { VaultKeys } from './keys';

/** How long an index of a queue nobody beats for any more is kept, s. */
const INDEX_TTL_S = 86_400;

export class ConsumerLiveness {
  constructor(
    private readonly redis: Redis,
    private readonly keys: VaultKeys,
  ) {}

  /** This consumer is alive until now + ttlMs. */
  async beat(queue: string, pod: string, ttlMs: number, now = Date.now()): Promise<void> {
    const index = this.keys.alive(queue);
    await this.redis
      .multi()
      .set(`${index}:${pod}`, String(now + ttlMs), 'PX', ttlMs)
      .zadd(index, now + ttlMs, pod)
      .expire(index, INDEX_TTL_S)
      .exec();
  }

  /** A clean stop: dead from now (the index keeps the pod, so its queue reads as known-down). */
  async retire(queue: string, pod: string, now = Date.now()): Promise<void> {
    const index = this.keys.alive(queue);
    await this.redis.multi().del(`${index}:${pod}`).zadd(index, 'XX', now, pod).exec();
  }

  /**
   * Per queue: true when a consumer's heartbeat is current, false when every known one has
   * expired, undefined when nobody ever beat for it (unknown: counted as alive, so a stack without
   * heartbeats behaves as before).
   */
  async status(queues: readonly string[], now = Date.now()): Promise<(boolean | undefined)[]> {
    const m = this.redis.multi();
    for (const q of queues) m.zcount(this.keys.alive(q), now, '+inf').zcard(this.keys.alive(q));
    const res = (await m.exec()) ?? [];
    return queues.map((_, i) => {
      const [[e1, alive], [e2, known]] = [res[2 * i], res[2 * i + 1]] as [Error | null, number][];
      if (e1 || e2) throw e1 ?? e2;
      return Number(known) === 0 ? undefined : Number(alive) > 0;
    });
  }

  /** Latest heartbeat expiry among a queue's consumers (0 when none): when it last could have been alive. */
  async lastExpiry(queue: string): Promise<number> {
    const top = await this.redis.zrange(this.keys.alive(queue), -1, -1, 'WITHSCORES');
    return top.length ? Number(top[1]) : 0;
  }
}
