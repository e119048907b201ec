/**
 * One-shot REST jobs (the OpenAI audio routes) run as ephemeral sessions whose keys the gateway deletes when the
 * reply is done. When the client leaves early the worker would go on synthesizing or decoding and write events
 * nobody reads, and they would sit in the vault for the stream retention (a day). So the gateway marks the turn
 * abandoned; the worker checks before each result, stops, and deletes what it wrote.
 */
import type Redis from 'ioredis';
import type { VaultKeys } from './keys';

/** Gateway side: the client of `session`/`turn` is gone; the marker outlives the job's own deadline. */
export async function markAbandoned(redis: Redis, keys: VaultKeys, session: string, turn: string, ttlMs: number): Promise<void> {
  await redis.set(keys.turnAbandoned(session, turn), '1', 'PX', ttlMs);
}

/**
 * Worker side: true when the job's client is gone. Then the session's event stream, its seq counter and the marker
 * are deleted, so the caller should emit nothing more and return (the job is done: there is nobody to answer).
 */
export async function dropIfAbandoned(redis: Redis, keys: VaultKeys, session: string, turn: string): Promise<boolean> {
  if (!(await redis.exists(keys.turnAbandoned(session, turn)))) return false;
  await redis.del(
    keys.turnEvents(session),
    keys.turnSeq(session),
    keys.turnAbandoned(session, turn),
    keys.turnAudio(session, turn),
    keys.turn(session, turn),
  );
  return true;
}
