/** Every error the gateway answers with: stable ORB_ERR_* codes, one place (fastify's lib/errors.js style). */
import createError from '@fastify/error';
import type { FastifyError } from 'fastify';
import { AcpError } from '../acp/envelope';
import { isVaultUnavailable } from './vault';

export const ORB_ERR_UNAUTHORIZED = createError('ORB_ERR_UNAUTHORIZED', 'Missing or invalid API key: %s', 401);
export const ORB_ERR_BAD_REQUEST = createError('ORB_ERR_BAD_REQUEST', 'Invalid request: %s', 400);
export const ORB_ERR_MALFORMED_JSON = createError('ORB_ERR_MALFORMED_JSON', 'Malformed JSON: %s', 400);
export const ORB_ERR_BODY_TOO_LARGE = createError('ORB_ERR_BODY_TOO_LARGE', 'Body larger than %d bytes', 413);
export const ORB_ERR_UNSUPPORTED_MEDIA = createError('ORB_ERR_UNSUPPORTED_MEDIA', 'Unsupported Content-Type: %s', 415);
export const ORB_ERR_AUDIO_FORMAT = createError('ORB_ERR_AUDIO_FORMAT', 'Unsupported audio: %s (want PCM16LE, 16000 Hz, mono)', 415);
export const ORB_ERR_AUDIO_MALFORMED = createError('ORB_ERR_AUDIO_MALFORMED', 'Malformed audio: %s', 400);
export const ORB_ERR_UNSUPPORTED_PARAMETER = createError('ORB_ERR_UNSUPPORTED_PARAMETER', 'Not supported by the model: %s', 400);
export const ORB_ERR_UPGRADE_REQUIRED = createError('ORB_ERR_UPGRADE_REQUIRED', 'This route needs a WebSocket upgrade: %s', 426);
export const ORB_ERR_FRAME_TOO_LARGE = createError('ORB_ERR_FRAME_TOO_LARGE', 'Frame larger than %d bytes', 413);
export const ORB_ERR_UTTERANCE_TOO_LONG = createError('ORB_ERR_UTTERANCE_TOO_LONG', 'Utterance longer than %d bytes', 413);
export const ORB_ERR_UNKNOWN_SESSION = createError('ORB_ERR_UNKNOWN_SESSION', 'Unknown session: %s', 404);
export const ORB_ERR_BAD_SEQ = createError('ORB_ERR_BAD_SEQ', 'Bad seq: %s', 400);
export const ORB_ERR_BAD_EVENT = createError('ORB_ERR_BAD_EVENT', 'Bad client event: %s', 400);
export const ORB_ERR_NOT_FOUND = createError('ORB_ERR_NOT_FOUND', 'No route %s', 404);
export const ORB_ERR_TOO_MANY_REQUESTS = createError('ORB_ERR_TOO_MANY_REQUESTS', 'Rate limit exceeded, retry in %s', 429);
export const ORB_ERR_TOO_MANY_SOCKETS = createError('ORB_ERR_TOO_MANY_SOCKETS', 'Key already holds %d WebSockets', 429);
export const ORB_ERR_UNDER_PRESSURE = createError('ORB_ERR_UNDER_PRESSURE', 'Replica under pressure, retry later', 503);
export const ORB_ERR_DRAINING = createError('ORB_ERR_DRAINING', 'Replica is draining, reconnect to another', 503);
export const ORB_ERR_IDENTITY_UNAVAILABLE = createError('ORB_ERR_IDENTITY_UNAVAILABLE', 'Identity document not loaded: %s', 503);
export const ORB_ERR_TURN_TIMEOUT = createError('ORB_ERR_TURN_TIMEOUT', 'Turn %s got no answer within %d ms', 504);
export const ORB_ERR_TURN_FAILED = createError('ORB_ERR_TURN_FAILED', 'Turn %s failed: %s', 502);
export const ORB_ERR_VAULT_UNAVAILABLE = createError('ORB_ERR_VAULT_UNAVAILABLE', 'Vault unavailable: %s', 503);

/** WebSocket close codes (RFC 6455 + 4000-4999 private range). */
export const WS_CLOSE = {
  normal: 1000,
  unsupportedData: 1003,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  unauthorized: 4401,
  /** No client frame for ORB_WS_IDLE_MS. */
  idle: 4408,
  unknownSession: 4404,
  tooManySockets: 4429,
} as const;
export const ORB_ERR_BUS_BACKLOG = createError('ORB_ERR_BUS_BACKLOG', 'Workers are saturated: %s', 503);
export const ORB_ERR_INTERNAL = createError('ORB_ERR_INTERNAL', 'Internal error', 500);

/** Maps framework and bus errors onto the ORB_ERR_* codes clients rely on. */
export function toOrbError(err: FastifyError | Error, bodyLimitBytes = 0): FastifyError {
  const e = err as FastifyError & { validation?: unknown; validationContext?: string };
  if (typeof e.code === 'string' && e.code.startsWith('ORB_ERR_')) return e;
  if (e.validation) return new ORB_ERR_BAD_REQUEST(e.message);
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ORB_ERR_MALFORMED_JSON(e.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ORB_ERR_BODY_TOO_LARGE(bodyLimitBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ORB_ERR_UNSUPPORTED_MEDIA(e.message);
  }
  if (err instanceof SyntaxError) return new ORB_ERR_MALFORMED_JSON(err.message);
  if (isVaultUnavailable(err)) return new ORB_ERR_VAULT_UNAVAILABLE(err.message);
  if (err instanceof AcpError) {
    return err.code === 'ACP_ERR_BACKLOG' ? new ORB_ERR_BUS_BACKLOG(err.message) : new ORB_ERR_BAD_REQUEST(err.message);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return Object.assign(new ORB_ERR_BAD_REQUEST(e.message), { statusCode: e.statusCode });
  }
  return new ORB_ERR_INTERNAL();
}
