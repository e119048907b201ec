/**
 * Jest global setup: tests use the Redis named by REDIS_URL; when it is unset, a redis-server of
 * their own is started on a free port (and REDIS_URL set for every worker, which inherits env).
 * Each test file still uses its own key prefix (see test/support/vault.ts) so runs never collide.
 */
import { startRedisServer } from './redis-server';

export default async function globalSetup(): Promise<void> {
  if (process.env.REDIS_URL) return;
  const server = await startRedisServer();
  process.env.REDIS_URL = server.url;
  process.env.ORB_TEST_REDIS_PID = String(server.process.pid);
  process.env.ORB_TEST_REDIS_DIR = server.dir;
  // Do not keep jest's parent process alive for the child; global-teardown stops it.
  server.process.unref();
  (server.process.stderr as unknown as { unref?: () => void })?.unref?.();
}
