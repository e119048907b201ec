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

/** A read refreshes a session's TTL only once this share of it has run out (at most one write per tenth of the TTL). */
export const SESSION_TOUCH_AFTER = 0.1;

export class SessionStore {
  /** Remaining TTL (ms) below which a read refreshes it. */
  readonly touchBelowMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlS: number,
  ) {
    this.touchBelowMs = Math.floor(ttlS * 1000 * (1 - SESSION_TOUCH_AFTER));
  }

  key(sid: string): string {
    return `${this.prefix}session:${sid}`;
  }
  indexKey(keyId: string): string {
    return `${this.prefix}session:index:${keyId}`;
  }

  async create(owner: string, replica: string, metadata: Record<string, string> = {}): Promise<SessionRecord> {
    const rec: SessionRecord = { id: randomUUID(), owner, createdAt: new Date().toISOString(), createdBy: replica, metadata };
    await this.redis
      .multi()
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

  /** The session hash's remaining TTL in ms (PTTL: -2 when missing, -1 when it has none). */
  remainingMs(sid: string): Promise<number> {
    return this.redis.pttl(this.key(sid));
  }

  /** True when a read that saw `remainingMs` left should refresh the TTL (below the threshold, or none set). */
  needsTouch(remainingMs: number): boolean {
    return remainingMs === -1 || (remainingMs >= 0 && remainingMs < this.touchBelowMs);
  }

  /** The utterance a socket left open on this session (any replica appends to it next), or null. */
  async openUtterance(sid: string): Promise<string | null> {
    return this.redis.hget(this.key(sid), 'open_utterance');
  }

  /** Records the session's open utterance, so a replica that takes the session over appends to the same one. */
  async setOpenUtterance(sid: string, turn: string): Promise<void> {
    await this.redis.hset(this.key(sid), 'open_utterance', turn);
  }

  /** The utterance was committed or cleared. */
  async clearOpenUtterance(sid: string): Promise<void> {
    await this.redis.hdel(this.key(sid), 'open_utterance');
  }

  /** Keeps an active session (and its index entry) alive for another TTL. */
  async touch(sid: string, owner: string): Promise<void> {
    await this.redis.multi().expire(this.key(sid), this.ttlS).expire(this.indexKey(owner), this.ttlS).exec();
  }
}

function safeJson(s: string | undefined): Record<string, string> {
  try {
    return s ? JSON.parse(s) : {};
  } catch {
    return {};
  }
}
