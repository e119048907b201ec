/**
 * Bounded blocking reads. An ioredis XREAD/XREADGROUP issued while its connection is reconnecting
 * (a vault restart) can stay queued and never settle; a reader awaiting it waits forever while the
 * rest of the process looks healthy. Every blocking read is therefore raced against its BLOCK
 * time plus a margin: past that, the connection is dropped and the caller re-issues on a fresh one.
 */
import type Redis from 'ioredis';

/** Extra time over BLOCK a read may take before its connection is presumed stuck. @default 2000 */
export const BLOCKING_MARGIN_MS = 2000;

export class BlockingReadStuckError extends Error {
  readonly code = 'ACP_ERR_READ_STUCK';
  constructor(ms: number) {
    super(`a blocking read did not settle within ${ms} ms; its connection was dropped`);
    this.name = 'BlockingReadStuckError';
  }
}

/** Runs `read` (a blocking command on `conn`); disconnects `conn` and throws when it outlives `blockMs + marginMs`. */
export async function boundedRead<T>(conn: Redis, blockMs: number, read: () => Promise<T>, marginMs = BLOCKING_MARGIN_MS): Promise<T> {
  const limit = blockMs + marginMs;
  let timer: NodeJS.Timeout | undefined;
  const p = read();
  p.catch(() => undefined); // a late rejection after the timeout is expected, not unhandled
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          conn.disconnect();
          reject(new BlockingReadStuckError(limit));
        }, limit);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
