/**
 * The ACP/1.0 envelope: one JSON Schema, validated by producers (createEnvelope) and consumers
 * (parseEnvelope) alike, so a malformed message is caught at both ends of every hop.
 */
import { randomUUID } from 'node:crypto';
import Ajv, { ErrorObject } from 'ajv';

export const ACP_PROTOCOL = 'acp/1.0';
/** Major version this build speaks; a minor bump (acp/1.1) stays readable, a major one does not. */
export const ACP_MAJOR = 1;

export interface AcpPart {
  /** MIME type of the part, e.g. `text/plain`, `application/json`, `audio/pcm;rate=16000`. */
  readonly content_type: string;
  /** Inline content (string or JSON value); exactly one of content / content_ref. */
  readonly content?: unknown;
  /** Reference to content stored elsewhere, e.g. a vault key `turn:{sid}:{turnId}:audio`. */
  readonly content_ref?: string;
  /** e.g. `base64` when `content` is a base64 string of binary data. */
  readonly content_encoding?: string;
}

export interface AcpEnvelope {
  readonly protocol: string;
  /** Job id: unique per job, the dedupe key of its results. */
  readonly id: string;
  /** What the job asks for, e.g. `core.classify`, `cali.turn`, `asr.transcribe`, `tts.speak`. */
  readonly kind: string;
  readonly session: string;
  readonly turn: string;
  /** Event-stream seq the job was created after (consumers read the turn's events from here). */
  readonly seq?: number;
  /** Absolute deadline, Unix epoch milliseconds: work still queued after it is dropped. */
  readonly deadline_ms: number;
  /** W3C trace context of the producer. */
  readonly traceparent?: string;
  readonly parts: readonly AcpPart[];
}

export type AcpErrorCode = 'ACP_ERR_PROTOCOL' | 'ACP_ERR_ENVELOPE' | 'ACP_ERR_BACKLOG' | 'ACP_ERR_DEADLINE';

/** Typed bus error; `code` is stable (the gateway maps it to an HTTP status). */
export class AcpError extends Error {
  constructor(
    readonly code: AcpErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${code}: ${message}`);
    this.name = 'AcpError';
  }
}

const ID = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:-]+$' } as const;

/** The one schema of ACP/1.0 (minor versions may only add optional fields). */
export const ACP_ENVELOPE_SCHEMA = {
  $id: 'https://ucm4.example/acp/1.0/envelope.json',
  type: 'object',
  required: ['protocol', 'id', 'kind', 'session', 'turn', 'deadline_ms', 'parts'],
  additionalProperties: false,
  properties: {
    protocol: { type: 'string', pattern: '^acp/\\d+\\.\\d+$' },
    id: ID,
    kind: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[a-z][a-z0-9_.-]*$' },
    session: ID,
    turn: ID,
    seq: { type: 'integer', minimum: 0 },
    deadline_ms: { type: 'integer', minimum: 0 },
    traceparent: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
    parts: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['content_type'],
        additionalProperties: false,
        properties: {
          content_type: { type: 'string', minLength: 1, maxLength: 200 },
          content: {},
          content_ref: { type: 'string', minLength: 1, maxLength: 500 },
          content_encoding: { type: 'string', enum: ['base64', 'utf-8', 'identity'] },
        },
        oneOf: [{ required: ['content'] }, { required: ['content_ref'] }],
      },
    },
  },
} as const;

// strictRequired off: the oneOf branches name properties declared one level up, which ajv's strict mode flags.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile<AcpEnvelope>(ACP_ENVELOPE_SCHEMA);

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}

/** The protocol's major version, or undefined when it is not `acp/<major>.<minor>`. */
function majorOf(protocol: unknown): number | undefined {
  if (typeof protocol !== 'string') return undefined;
  const m = /^acp\/(\d+)\.\d+$/.exec(protocol);
  return m ? Number(m[1]) : undefined;
}

/**
 * Parses and validates an envelope from a JSON string, Buffer or already-parsed object.
 * Throws AcpError ACP_ERR_PROTOCOL for another major version (mixed versions during a rolling
 * upgrade are visible, not silent) and ACP_ERR_ENVELOPE for anything else malformed.
 */
export function parseEnvelope(raw: unknown): AcpEnvelope {
  let value: unknown = raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    try {
      value = JSON.parse(raw.toString());
    } catch (err) {
      throw new AcpError('ACP_ERR_ENVELOPE', `not JSON: ${(err as Error).message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AcpError('ACP_ERR_ENVELOPE', 'envelope must be a JSON object');
  }
  const protocol = (value as { protocol?: unknown }).protocol;
  const major = majorOf(protocol);
  if (protocol !== undefined && major === undefined) {
    throw new AcpError('ACP_ERR_PROTOCOL', `unrecognised protocol ${JSON.stringify(protocol)}; expected acp/${ACP_MAJOR}.x`);
  }
  if (major !== undefined && major !== ACP_MAJOR) {
    throw new AcpError('ACP_ERR_PROTOCOL', `unsupported protocol ${JSON.stringify(protocol)}: this build speaks acp/${ACP_MAJOR}.x`);
  }
  if (!validate(value)) throw new AcpError('ACP_ERR_ENVELOPE', describe(validate.errors), validate.errors);
  return value;
}

export interface CreateEnvelopeInput {
  readonly kind: string;
  readonly session: string;
  readonly turn: string;
  readonly parts: readonly AcpPart[];
  /** @default - a random UUID */
  readonly id?: string;
  readonly seq?: number;
  /** Absolute deadline (epoch ms); wins over timeoutMs. */
  readonly deadlineMs?: number;
  /** Deadline relative to now. @default 30000 */
  readonly timeoutMs?: number;
  readonly traceparent?: string;
}

/** Builds a valid ACP/1.0 envelope or throws AcpError ACP_ERR_ENVELOPE naming the bad field. */
export function createEnvelope(input: CreateEnvelopeInput): AcpEnvelope {
  const env: AcpEnvelope = {
    protocol: ACP_PROTOCOL,
    id: input.id ?? randomUUID(),
    kind: input.kind,
    session: input.session,
    turn: input.turn,
    ...(input.seq !== undefined ? { seq: input.seq } : {}),
    deadline_ms: Math.floor(input.deadlineMs ?? Date.now() + (input.timeoutMs ?? 30_000)),
    ...(input.traceparent !== undefined ? { traceparent: input.traceparent } : {}),
    parts: input.parts,
  };
  return parseEnvelope(env);
}

/** A text part. */
export function textPart(text: string): AcpPart {
  return { content_type: 'text/plain', content: text };
}

/** A JSON part. */
export function jsonPart(value: unknown): AcpPart {
  return { content_type: 'application/json', content: value };
}

/** The first part of the given content type's inline content, or undefined. */
export function partContent<T = unknown>(env: AcpEnvelope, contentType: string): T | undefined {
  return env.parts.find((p) => p.content_type === contentType)?.content as T | undefined;
}
