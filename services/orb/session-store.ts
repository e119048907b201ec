/**
 * Sessions in the vault (`session:{sid}` hash + `session:index:{keyId}` set). A session belongs to
 * the API key that created it; to every other key it does not exist (404, never 403).
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';

export interface SessionRecord {
  readonly id: string;
  readonly owner: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly metadata: Record<string, string>;
}

export const SESSION_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
export const SESSION_ID_RE = new RegExp(SESSION_ID_PATTERN);

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlS: number,
  ) {}

  key(sid: string): string { return `${this.prefix}session:${sid}`; }
  indexKey(keyId: string): string { return `${this.prefix}session:index:${keyId}`; }

  async create(owner: string, replica: string, metadata: Record<string, string> = {}): Promise<SessionRecord> {
    const rec: SessionRecord = { id: randomUUID(), owner, createdAt: new Date().toISOString(), createdBy: replica, metadata };
    await this.redis.multi()
      .hset(this.key(rec.id), { owner, created_at: rec.createdAt, created_by: replica, metadata: JSON.stringify(metadata) })
      .expire(this.key(rec.id), this.ttlS)
      .sadd(this.indexKey(owner), rec.id)
      .expire(this.indexKey(owner), this.ttlS)
      .exec();
    return rec;
  }

  /** The session if it exists AND belongs to `owner`; otherwise undefined (callers answer 404 either way). */
  async get(sid: string, owner: string): Promise<SessionRecord | undefined> {
    if (!SESSION_ID_RE.test(sid)) return undefined;
    const h = await this.redis.hgetall(this.key(sid));
    if (!h.owner || h.owner !== owner) return undefined;
    return { id: sid, owner: h.owner, createdAt: h.created_at, createdBy: h.created_by, metadata: safeJson(h.metadata) };
  }

  /** Keeps an active session (and its index entry) alive for another TTL. */
  async touch(sid: string, owner: string): Promise<void> {
    await this.redis.multi().expire(this.key(sid), this.ttlS).expire(this.indexKey(owner), this.ttlS).exec();
  }
}

function safeJson(s: string | undefined): Record<string, string> {
  try { return s ? JSON.parse(s) : {}; } catch { return {}; }
}
