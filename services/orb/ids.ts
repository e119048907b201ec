/**
 * Strings a replica keeps for as long as a connection lives (socket ids, request ids, a request
 * logger's bindings). Strings built by `+` are ropes of V8 cons strings (32 B per piece): node's
 * randomUUID() returns its 36 characters as about a dozen of them (~400 B of heap), where a flat
 * copy of the same characters is 56 B. One such id is kept per open WebSocket, so they are
 * flattened once here.
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
