/**
 * Ids a replica keeps for as long as a connection lives (socket ids, request ids). node's
 * randomUUID() builds its 36 characters by `+` and returns them as a rope of about a dozen V8
 * cons strings (~400 B of heap); a flat copy of the same characters is 56 B. One such id is
 * kept per open WebSocket, so they are flattened once here.
 */
import { randomUUID } from 'node:crypto';

/** The same random v4 UUID as crypto.randomUUID(), as one flat string. */
export function flatUUID(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/** The same characters as one flat string (any string: JSON round trip keeps every code unit). */
export function flatString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
