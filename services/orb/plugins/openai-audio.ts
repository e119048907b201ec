/**
 * OpenAI-shaped audio routes, through the bus so any replica serves them and any whisperx/xtts pod does the work:
 *   POST /v1/audio/transcriptions  multipart: file, model, language, response_format (json|text|verbose_json|srt|vtt),
 *                                  timestamp_granularities[] (segment|word)
 *   POST /v1/audio/speech          JSON: model, input, voice, response_format (wav|pcm), speed
 * The official `openai` client works against them unchanged. Each request runs as a one-turn ephemeral session:
 * the job goes to `acp:jobs:{whisperx|xtts}`, the result is read back from that session's event stream, then the
 * session's keys are deleted. The gateway never decodes audio: bad audio comes back from the worker as a
 * `turn.error` with its stable code and HTTP status.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import createError from '@fastify/error';
import fastifyMultipart from '@fastify/multipart';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type Redis from 'ioredis';
import { AcpBus, AcpPart, createEnvelope, jsonPart, textPart, TurnEvent, TurnEventStream, VaultKeys } from '../../acp';
import { AudioCapabilities, checkTranscriptionFields, DEFAULT_CAPABILITIES } from '../audio-params';
import { rawPcmUpload } from '../audio';

export const ORB_ERR_AUDIO_REQUEST = createError('ORB_ERR_AUDIO_REQUEST', 'Invalid audio request: %s', 400);
export const ORB_ERR_AUDIO_TIMEOUT = createError('ORB_ERR_AUDIO_TIMEOUT', 'No %s worker answered within %d ms', 504);
export const ORB_ERR_AUDIO_UPSTREAM = createError('ORB_ERR_AUDIO_UPSTREAM', 'Audio worker failed: %s', 502);

export interface OpenAiAudioOptions {
  readonly bus: AcpBus;
  readonly events: TurnEventStream;
  /** The gateway's vault client: holds uploaded audio for the worker (`turn:{sid}:{turn}:audio`). */
  readonly redis: Redis;
  readonly keys: VaultKeys;
  /** How long a request waits for its worker. @default 60000 */
  readonly timeoutMs?: number;
  /** Largest upload accepted, bytes (OpenAI's limit). @default 26214400 */
  readonly maxUploadBytes?: number;
  /** Longest `input` of /v1/audio/speech (OpenAI's limit). @default 4096 */
  readonly maxInputChars?: number;
  /** What the speech models accept; parameters outside it are refused before a job is queued. @default DEFAULT_CAPABILITIES */
  readonly capabilities?: AudioCapabilities;
  /** Extra preHandler, e.g. auth where the app has no global hook. @default - none */
  readonly preHandler?: preHandlerHookHandler;
}

type ResponseFormat = 'json' | 'text' | 'verbose_json' | 'srt' | 'vtt';
const RESPONSE_FORMATS: readonly ResponseFormat[] = ['json', 'text', 'verbose_json', 'srt', 'vtt'];

interface Word { word: string; start: number; end: number }
interface Segment { id: number; start: number; end: number; text: string; tokens: number[]; avg_logprob: number; words?: Word[] }
interface TranscriptData { text: string; language: string; duration: number; segments: Segment[] }
interface AudioData { index: number; sample_rate: number; data: string; final: boolean }

// OpenAI's verbose_json names the language in English words.
const LANGUAGE_NAMES: Record<string, string> = {
  en: 'english', de: 'german', fr: 'french', es: 'spanish', it: 'italian', pt: 'portuguese', nl: 'dutch', ja: 'japanese',
  zh: 'chinese', ru: 'russian', ko: 'korean', pl: 'polish', tr: 'turkish', ar: 'arabic', hi: 'hindi', sv: 'swedish',
};

function timestamp(s: number, sep: ',' | '.'): string {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(sec)}${sep}${pad(ms % 1000, 3)}`;
}

export function toSrt(segments: readonly Segment[]): string {
  return segments.map((s, i) => `${i + 1}\n${timestamp(s.start, ',')} --> ${timestamp(s.end, ',')}\n${s.text.trim()}\n`).join('\n');
}

export function toVtt(segments: readonly Segment[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${timestamp(s.start, '.')} --> ${timestamp(s.end, '.')}\n${s.text.trim()}\n`).join('\n')}`;
}

function verboseJson(t: TranscriptData, granularities: Set<string>, task: string): object {
  const segments = granularities.has('segment') || !granularities.has('word');
  return {
    task,
    language: LANGUAGE_NAMES[t.language] ?? t.language,
    duration: t.duration,
    text: t.text,
    ...(granularities.has('word') ? { words: t.segments.flatMap((s) => s.words ?? []) } : {}),
    ...(segments ? {
      segments: t.segments.map((s) => ({
        id: s.id, seek: 0, start: s.start, end: s.end, text: ` ${s.text}`, tokens: s.tokens, temperature: 0,
        avg_logprob: s.avg_logprob, compression_ratio: 1, no_speech_prob: 0,
      })),
    } : {}),
  };
}

function wavHeader(dataBytes: number, sampleRate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** OpenAI's `pcm` is 24 kHz PCM16LE; voices have their own rate, so resample linearly (speech band is far below 12 kHz). */
export function resamplePcm16(pcm: Buffer, from: number, to: number): Buffer {
  if (from === to || pcm.length < 4) return pcm;
  const n = pcm.length / 2;
  const m = Math.max(1, Math.round((n * to) / from));
  const out = Buffer.alloc(m * 2);
  for (let j = 0; j < m; j++) {
    const x = (j * from) / to;
    const i = Math.min(n - 1, Math.floor(x));
    const k = Math.min(n - 1, i + 1);
    const f = x - i;
    out.writeInt16LE(Math.round(pcm.readInt16LE(i * 2) * (1 - f) + pcm.readInt16LE(k * 2) * f), j * 2);
  }
  return out;
}

function workerError(ev: TurnEvent): Error {
  const d = (ev.data ?? {}) as { code?: string; message?: string; status?: number };
  if (d.code && d.status && d.status >= 400 && d.status < 500) {
    return Object.assign(new Error(d.message ?? d.code), { code: d.code, statusCode: d.status });
  }
  return new ORB_ERR_AUDIO_UPSTREAM(d.message ?? 'unknown error');
}

/** How the OpenAI client's audio upload looks on our side: which MIME type the worker should assume. */
function uploadContentType(bytes: Buffer, mimetype: string | undefined): string {
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF') return 'audio/wav';
  if (mimetype?.startsWith('audio/pcm') || mimetype?.startsWith('audio/l16')) return mimetype;
  return 'audio/x-unknown'; // the worker sniffs and answers ORB_ERR_AUDIO_FORMAT
}

async function openAiAudioRoutes(app: FastifyInstance, opts: OpenAiAudioOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxUpload = opts.maxUploadBytes ?? 25 * 1024 * 1024;
  const preHandler = opts.preHandler ? [opts.preHandler] : [];
  // Scoped to these routes: the multipart parser must not change how the rest of the gateway reads bodies.
  await app.register(fastifyMultipart, { limits: { fileSize: maxUpload, files: 1, fields: 20, fieldSize: 1024 } });

  /**
   * Runs one job as an ephemeral session and yields its events (a `turn.error` is thrown as its 4xx) until the
   * caller stops iterating; then the session's keys are deleted.
   */
  async function* jobEvents(queue: 'whisperx' | 'xtts', kind: string, build: (session: string, turn: string) => Promise<AcpPart[]>,
    req: FastifyRequest): AsyncGenerator<TurnEvent> {
    const session = `audio-${randomUUID()}`;
    const turn = 'rest';
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    timer.unref();
    // A client that hangs up stops the wait (the worker's job still completes; its events expire with the session).
    const onClose = () => ac.abort();
    req.raw.socket?.once('close', onClose);
    try {
      const parts = await build(session, turn);
      await opts.bus.publish(queue, createEnvelope({ kind, session, turn, seq: 0, timeoutMs, parts }));
      for await (const ev of opts.events.tail(session, 0, { signal: ac.signal })) {
        if (ev.type === 'turn.error') throw workerError(ev);
        yield ev;
      }
      throw new ORB_ERR_AUDIO_TIMEOUT(queue, timeoutMs);
    } finally {
      clearTimeout(timer);
      req.raw.socket?.off('close', onClose);
      await opts.redis.del(opts.keys.turnEvents(session), opts.keys.turnSeq(session), opts.keys.turnAudio(session, turn)).catch(() => undefined);
    }
  }

  /**
   * The first event `pick` accepts. Reads with next() rather than for-await, whose early exit would close the
   * generator (and delete the session) while the caller still wants the events after it.
   */
  async function firstOf<T>(events: AsyncGenerator<TurnEvent>, pick: (ev: TurnEvent) => T | undefined): Promise<T> {
    for (;;) {
      const r = await events.next();
      if (r.done) throw new ORB_ERR_AUDIO_UPSTREAM('event stream ended early');
      const v = pick(r.value);
      if (v !== undefined) return v;
    }
  }

  app.post('/v1/audio/transcriptions', { preHandler }, async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.isMultipart()) throw new ORB_ERR_AUDIO_REQUEST('send multipart/form-data with a `file` field');
    let file: Buffer | undefined;
    let mimetype: string | undefined;
    const fields: Record<string, string> = {};
    const fieldList: [string, string][] = [];
    const granularities = new Set<string>();
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw new ORB_ERR_AUDIO_REQUEST(`unexpected file field '${part.fieldname}'`);
          file = await part.toBuffer();
          // busboy drops the part's media type parameters: raw PCM here is 16 kHz PCM16LE, audio/L16 (rate required) is refused.
          mimetype = part.mimetype;
        } else if (typeof part.value !== 'string' || part.valueTruncated || part.fieldnameTruncated) {
          throw new ORB_ERR_AUDIO_REQUEST(`field '${part.fieldname.slice(0, 40)}' must be a plain text value of at most 1024 bytes`);
        } else if (part.fieldname === 'timestamp_granularities[]' || part.fieldname === 'timestamp_granularities') {
          fieldList.push([part.fieldname, part.value]);
          granularities.add(String(part.value));
        } else {
          fields[part.fieldname] = part.value;
          fieldList.push([part.fieldname, part.value]);
        }
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_REQ_FILE_TOO_LARGE') throw Object.assign(new ORB_ERR_AUDIO_REQUEST(`file larger than ${maxUpload} bytes`), { statusCode: 413 });
      if (code?.startsWith('ORB_ERR_')) throw err;
      // Anything else here is the body not being the multipart it claims (busboy: bad boundary, cut-off part…).
      throw new ORB_ERR_AUDIO_REQUEST(`malformed multipart body: ${(err as Error).message}`);
    }
    if (!file) throw new ORB_ERR_AUDIO_REQUEST('missing `file`');
    if (!fields.model) throw new ORB_ERR_AUDIO_REQUEST('missing `model`');
    const format = (fields.response_format || 'json') as ResponseFormat;
    if (!RESPONSE_FORMATS.includes(format)) throw new ORB_ERR_AUDIO_REQUEST(`response_format must be one of ${RESPONSE_FORMATS.join(', ')}`);
    for (const g of granularities) if (g !== 'word' && g !== 'segment') throw new ORB_ERR_AUDIO_REQUEST(`timestamp_granularities[] must be word or segment, got '${g}'`);
    const language = fields.language || undefined;
    checkTranscriptionFields(fieldList, opts.capabilities ?? DEFAULT_CAPABILITIES);
    const rawPcm = rawPcmUpload(mimetype ?? '', file);

    const upload = rawPcm?.bytes ?? file;
    const events = jobEvents('whisperx', 'asr.transcribe', async (session, turn) => {
      // The audio waits in the vault (like a voice turn's utterance) so the job entry stays small.
      const key = opts.keys.turnAudio(session, turn);
      await opts.redis.set(key, upload, 'PX', timeoutMs + 60_000);
      return [{ content_type: rawPcm?.contentType ?? uploadContentType(upload, mimetype), content_ref: key }, jsonPart({ fan_out: false, ...(language ? { language } : {}) })];
    }, req);
    let t: TranscriptData;
    try {
      t = await firstOf(events, (ev) => (ev.type === 'transcript' ? (ev.data as TranscriptData) : undefined));
    } finally {
      await events.return(undefined);
    }
    switch (format) {
      case 'text':
        return reply.type('text/plain; charset=utf-8').send(`${t.text}\n`);
      case 'srt':
        return reply.type('text/plain; charset=utf-8').send(toSrt(t.segments));
      case 'vtt':
        return reply.type('text/vtt; charset=utf-8').send(toVtt(t.segments));
      case 'verbose_json':
        return reply.send(verboseJson(t, granularities, 'transcribe'));
      default:
        return reply.send({ text: t.text });
    }
  });

  const speechSchema = {
    body: {
      type: 'object',
      required: ['model', 'input', 'voice'],
      properties: {
        model: { type: 'string', minLength: 1, maxLength: 200 },
        input: { type: 'string', minLength: 1, maxLength: opts.maxInputChars ?? 4096, pattern: '\\S' },
        voice: { anyOf: [{ type: 'string', minLength: 1, maxLength: 200 }, { type: 'object', properties: { id: { type: 'string' } } }] },
        instructions: { type: 'string' },
        response_format: { type: 'string', enum: ['wav', 'pcm'] },
        speed: { type: 'number', minimum: 0.25, maximum: 4 },
        stream_format: { type: 'string', enum: ['audio'] },
      },
    },
  } as const;

  app.post<{ Body: { model: string; input: string; voice: string | { id?: string }; response_format?: 'wav' | 'pcm'; speed?: number } }>(
    '/v1/audio/speech', { schema: speechSchema, preHandler }, async (req, reply) => {
      const b = req.body;
      const voice = typeof b.voice === 'string' ? b.voice : b.voice.id;
      const events = jobEvents('xtts', 'tts.speak', async () => [textPart(b.input), jsonPart({ ...(voice ? { voice } : {}), speed: b.speed ?? 1 })], req);
      const audioOf = (ev: TurnEvent) => (ev.type === 'audio' ? (ev.data as AudioData) : undefined);
      // Wait for the first sentence before answering, so worker errors still become a proper 4xx.
      let first: AudioData;
      try {
        first = await firstOf(events, audioOf);
      } catch (err) {
        await events.return(undefined);
        throw err;
      }
      if ((b.response_format ?? 'wav') === 'pcm') {
        // Raw PCM has no header: stream each sentence as it is synthesized (OpenAI's pcm is 24 kHz).
        async function* pcmChunks(): AsyncGenerator<Buffer> {
          try {
            yield resamplePcm16(Buffer.from(first.data, 'base64'), first.sample_rate, 24000);
            if (first.final) return;
            for await (const ev of events) {
              const a = audioOf(ev);
              if (!a) continue;
              yield resamplePcm16(Buffer.from(a.data, 'base64'), a.sample_rate, 24000);
              if (a.final) return;
            }
          } finally {
            await events.return(undefined);
          }
        }
        return reply.type('audio/pcm').header('x-sample-rate', '24000').send(Readable.from(pcmChunks()));
      }
      // WAV needs the data length up front: collect the sentences, then answer.
      const chunks: Buffer[] = [];
      chunks[first.index] = Buffer.from(first.data, 'base64');
      try {
        if (!first.final) {
          await firstOf(events, (ev) => {
            const a = audioOf(ev);
            if (!a) return undefined;
            chunks[a.index] = Buffer.from(a.data, 'base64');
            return a.final ? true : undefined;
          });
        }
      } finally {
        await events.return(undefined);
      }
      const pcm = Buffer.concat(chunks.filter(Boolean));
      return reply.type('audio/wav').send(Buffer.concat([wavHeader(pcm.length, first.sample_rate), pcm]));
    });
}

export const openAiAudioPlugin = fp(async (app: FastifyInstance, opts: OpenAiAudioOptions) => {
  await app.register(openAiAudioRoutes, opts);
}, { fastify: '5.x', name: 'orb-openai-audio' });

export { toSrt as formatSrt, toVtt as formatVtt, verboseJson as formatVerboseJson, wavHeader };
