import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const pid = Number(process.env.ORB_TEST_REDIS_PID);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const dir = process.env.ORB_TEST_REDIS_DIR;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
