/**
 * OpenAI's error envelope for the OpenAI-shaped routes: `{"error": {"message", "type", "param", "code"}}`, the
 * ORB_ERR_* code in `code`. The official clients read `error.message`, so this is what their users see; the ORB's
 * own routes keep `{statusCode, code, error, message}`.
 */
import createError from '@fastify/error';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toOrbError } from '../errors';

export const ORB_ERR_AUDIO_REQUEST = createError('ORB_ERR_AUDIO_REQUEST', 'Invalid audio request: %s', 400);
export const ORB_ERR_AUDIO_TIMEOUT = createError('ORB_ERR_AUDIO_TIMEOUT', 'No %s worker answered within %d ms', 504);
export const ORB_ERR_AUDIO_UPSTREAM = createError('ORB_ERR_AUDIO_UPSTREAM', 'Audio worker failed: %s', 502);
export const ORB_ERR_MODEL_NOT_FOUND = createError('ORB_ERR_MODEL_NOT_FOUND', 'The model %s does not exist or is not served here', 404);
export const ORB_ERR_MODEL_TASK = createError('ORB_ERR_MODEL_TASK', 'Model %s is a %s model, this route needs %s', 400);
export const ORB_ERR_MODEL_UNAVAILABLE = createError(
  'ORB_ERR_MODEL_UNAVAILABLE',
  'No %s model is loaded right now (no worker has announced one); retry shortly',
  503,
);
export const ORB_ERR_ENCODER_MISSING = createError(
  'ORB_ERR_ENCODER_MISSING',
  'response_format %s needs the ffmpeg encoder, which this replica lacks (%s); wav and pcm work',
  501,
);
export const ORB_ERR_ENCODER_FAILED = createError('ORB_ERR_ENCODER_FAILED', 'Audio encoder failed: %s', 502);

/** An error that names the request parameter it is about (OpenAI's `param`). */
export function withParam<E extends Error>(err: E, param: string): E & { param: string } {
  return Object.assign(err, { param });
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The parameter a schema validation error is about: `/speed` → `speed`, a missing property → its name. */
function paramOfValidation(raw: FastifyError): string | null {
  const v = (raw as { validation?: Array<{ instancePath?: string; params?: { missingProperty?: string } }> }).validation?.[0];
  if (!v) return null;
  if (v.params?.missingProperty) return v.params.missingProperty;
  const path = (v.instancePath ?? '').replace(/^\//, '').split('/')[0];
  return path || null;
}

export function openAiErrorOf(raw: FastifyError | Error): { status: number; body: OpenAiErrorBody } {
  const err = toOrbError(raw);
  const status = err.statusCode ?? 500;
  const param = (raw as { param?: string }).param ?? paramOfValidation(raw as FastifyError);
  // Schema messages say `body/speed must be <= 4`: name the parameter as the client sent it.
  const message = err.message
    .replace(/^Invalid request: body\//, 'Invalid request: ')
    .replace(/^Invalid request: body /, 'Invalid request: ');
  return { status, body: { error: { message, type: typeOf(status), param, code: err.code } } };
}

/** Installs the envelope as the error handler of the (encapsulated) context the OpenAI routes live in. */
export function useOpenAiErrors(app: FastifyInstance): void {
  app.setErrorHandler((raw: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = openAiErrorOf(raw);
    if (status >= 500 && status !== 501 && status !== 503 && status !== 504) req.log.error({ err: raw }, 'request failed');
    else req.log.info({ code: body.error.code, status, msg: body.error.message }, 'request rejected');
    if (reply.raw.headersSent) {
      // Too late for a status: end the stream so the client sees a cut, not a clean end.
      reply.raw.destroy(raw);
      return;
    }
    // Refused before the whole upload was read (e.g. a second file): the rest of the body is still on the socket, so
    // it cannot carry another request; without this the client's pool reuses it and the next request is reset.
    if (!req.raw.complete) reply.header('connection', 'close');
    reply.status(status).type('application/json; charset=utf-8').send(body);
  });
}
