/** The seed vault's identity document: validated here, written by the seed Job, read by CALI. */
import Redis from 'ioredis';
import { VaultKeys } from '../acp';

export interface Identity {
  readonly name: string;
  readonly version: string;
  readonly persona?: string;
  readonly [extra: string]: unknown;
}

/** Throws an Error naming the bad field. */
export function parseIdentity(raw: string, source = 'identity'): Identity {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${source}: not JSON (${(err as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${source}: must be a JSON object`);
  const d = doc as Record<string, unknown>;
  if (typeof d.name !== 'string' || !d.name.trim()) throw new Error(`${source}: 'name' must be a non-empty string`);
  if (typeof d.version !== 'string' || !/^\d+(\.\d+)*$/.test(d.version))
    throw new Error(`${source}: 'version' must be a version string like "1.12"`);
  return d as Identity;
}

/** Writes identity:seed and identity:version in one transaction (idempotent). */
export async function writeIdentity(redis: Redis, keys: VaultKeys, identity: Identity): Promise<void> {
  await redis.multi().set(keys.identitySeed, JSON.stringify(identity)).set(keys.identityVersion, identity.version).exec();
}

/** Reads the seeded identity, or undefined when the seed Job has not run. */
export async function readIdentity(redis: Redis, keys: VaultKeys): Promise<Identity | undefined> {
  const raw = await redis.get(keys.identitySeed);
  return raw ? parseIdentity(raw, keys.identitySeed) : undefined;
}
