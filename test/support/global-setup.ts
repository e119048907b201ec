/**
 * Jest global setup: tests use the Redis named by REDIS_URL; when it is unset, a redis-server of
 * their own is started on a free port (and REDIS_URL set for every worker, which inherits env).
 * Each test file still uses its own key prefix (see test/support/vault.ts) so runs never collide.
 */
import Redis from 'ioredis';
import { loadOrbFunctions } from '../../services/acp/functions';
import { startRedisServer } from '../../tools/redis/redis-server';

/** The bootstrap step of the stack (the seed Job's): the vault's FUNCTION library, loaded once per run. */
async function bootstrap(url: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 2 });
  try {
    await loadOrbFunctions(redis);
  } finally {
    redis.disconnect();
  }
}

export default async function globalSetup(): Promise<void> {
  if (process.env.REDIS_URL) return bootstrap(process.env.REDIS_URL);
  const server = await startRedisServer();
  process.env.REDIS_URL = server.url;
  process.env.ORB_TEST_REDIS_PID = String(server.process.pid);
  process.env.ORB_TEST_REDIS_DIR = server.dir;
  // Do not keep jest's parent process alive for the child; global-teardown stops it.
  server.process.unref();
  await bootstrap(server.url);
  (server.process.stderr as unknown as { unref?: () => void })?.unref?.();
}
