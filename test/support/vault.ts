/** Per-test-file access to the real Redis of the run, under a unique key prefix. */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';

export function testRedisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: jest globalSetup should have started redis-server');
  return url;
}

/** A prefix no other test file or run uses, e.g. `t:3f9a1c2b:`. */
export function uniquePrefix(tag = 't'): string {
  return `${tag}:${randomBytes(4).toString('hex')}:`;
}

/** A plain client for assertions; the caller quits it. */
export function testRedis(): Redis {
  return new Redis(testRedisUrl(), { lazyConnect: false, maxRetriesPerRequest: 2 });
}

/** Deletes every key under `prefix` (SCAN, not KEYS, so a shared server is not blocked). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
