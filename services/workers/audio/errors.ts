import createError from '@fastify/error';

/**
 * Stable error codes for bad audio. Workers report `code` + `statusCode` back over the bus so the gateway
 * answers with the same 4xx without ever decoding audio itself.
 */
export const AudioErrors = {
  ORB_ERR_AUDIO_FORMAT: createError('ORB_ERR_AUDIO_FORMAT', 'Unsupported audio: %s', 415),
  ORB_ERR_AUDIO_TRUNCATED: createError('ORB_ERR_AUDIO_TRUNCATED', 'Truncated audio: %s', 400),
  ORB_ERR_AUDIO_EMPTY: createError('ORB_ERR_AUDIO_EMPTY', 'Audio has no samples: %s', 400),
  ORB_ERR_AUDIO_TOO_LONG: createError('ORB_ERR_AUDIO_TOO_LONG', 'Audio too long: %s', 413),
  ORB_ERR_AUDIO_SAMPLES: createError('ORB_ERR_AUDIO_SAMPLES', 'Invalid audio samples: %s', 400),
} as const;

export type AudioErrorCode = keyof typeof AudioErrors;

export interface CodedError extends Error {
  code: string;
  statusCode: number;
}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof Error && typeof (err as CodedError).code === 'string' && typeof (err as CodedError).statusCode === 'number';
}
