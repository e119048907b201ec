/**
 * The models the workers have actually loaded, kept in the vault so any gateway replica can list them
 * (GET /v1/models) and check a request's `model` against them. Each worker announces its models after
 * loading them and re-announces on a timer; an entry carries its own expiry, so a worker that died without
 * withdrawing drops out of the list once its entry goes stale (readers skip and remove stale entries).
 */
import type Redis from 'ioredis';
import type { VaultKeys } from './keys';

/** OpenAI's built-in voice names: clients send them unchanged, so xtts speaks them with its default voice. */
export const OPENAI_VOICES: readonly string[] = [
  'alloy',
  'ash',
  'ballad',
  'coral',
  'echo',
  'fable',
  'nova',
  'onyx',
  'sage',
  'shimmer',
  'verse',
  'marin',
  'cedar',
];

/** One model a worker serves. `id` is what a client names in `model`. */
export interface ServedModel {
  readonly id: string;
  /** What the model does, speaches' vocabulary: `automatic-speech-recognition` or `text-to-speech`. */
  readonly task: 'automatic-speech-recognition' | 'text-to-speech';
  /** Unix seconds: when the model's files were written. */
  readonly created: number;
  readonly owned_by: string;
  /** Voices of a text-to-speech model. */
  readonly voices?: readonly string[];
  /** Languages a speech-recognition model knows (ISO 639-1). */
  readonly languages?: readonly string[];
}

export interface Announcement {
  readonly role: string;
  readonly consumer: string;
  readonly models: readonly ServedModel[];
  /** Unix ms after which the entry no longer counts. */
  readonly expires_at: number;
}

export class ModelRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: VaultKeys,
  ) {}

  /** Records (or refreshes) what `consumer` of `role` serves, valid for `ttlMs`. */
  async announce(role: string, consumer: string, models: readonly ServedModel[], ttlMs: number): Promise<void> {
    const entry: Announcement = { role, consumer, models, expires_at: Date.now() + ttlMs };
    await this.redis.hset(this.keys.models, `${role}:${consumer}`, JSON.stringify(entry));
  }

  /** Removes `consumer`'s entry (clean shutdown). */
  async withdraw(role: string, consumer: string): Promise<void> {
    await this.redis.hdel(this.keys.models, `${role}:${consumer}`);
  }

  /** Live announcements; stale or unreadable entries are skipped and removed. */
  async live(now = Date.now()): Promise<Announcement[]> {
    const all = await this.redis.hgetall(this.keys.models);
    const live: Announcement[] = [];
    const stale: string[] = [];
    for (const [field, raw] of Object.entries(all)) {
      let a: Announcement | undefined;
      try {
        a = JSON.parse(raw) as Announcement;
      } catch {
        a = undefined;
      }
      if (a && Array.isArray(a.models) && a.expires_at > now) live.push(a);
      else stale.push(field);
    }
    if (stale.length) await this.redis.hdel(this.keys.models, ...stale);
    return live;
  }
}
