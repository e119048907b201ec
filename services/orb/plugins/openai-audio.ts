/**
 * OpenAI-shaped audio routes, through the bus so any replica serves them and any whisperx/xtts pod does the work:
 *   POST /v1/audio/transcriptions  multipart: file, model, language, prompt, temperature, response_format
 *                                  (json|text|verbose_json|srt|vtt), timestamp_granularities[] (segment|word), stream
 *   POST /v1/audio/translations    multipart: file, model, prompt, temperature, response_format (Whisper's translate task)
 *   POST /v1/audio/speech          JSON: model, input, voice, instructions, response_format (mp3|opus|aac|flac|wav|pcm),
 *                                  speed, stream_format (audio|sse)
 *   GET  /v1/models, /v1/models/{id}  the models the workers announced (openai-models.ts)
 * Errors use OpenAI's envelope (openai-errors.ts). Docs: docs/openai-compat.md.
 * The official `openai` client works against them unchanged. Each request runs as a one-turn ephemeral session:
 * the job goes to `acp:jobs:{whisperx|xtts}`, the result is read back from that session's event stream, then the
 * session's keys are deleted. The gateway never decodes audio: bad audio comes back from the worker as a
 * `turn.error` with its stable code and HTTP status.
 */
import { ACP_QUEUES } from '../../contract';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import fastifyMultipart from '@fastify/multipart';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type Redis from 'ioredis';
import {
  AcpBus,
  AcpPart,
  createEnvelope,
  jsonPart,
  markAbandoned,
  ModelRegistry,
  OPENAI_VOICES,
  textPart,
  TurnEvent,
  TurnEventStream,
  VaultKeys,
} from '../../acp';
import {
  ORB_ERR_AUDIO_REQUEST,
  ORB_ERR_AUDIO_TIMEOUT,
  ORB_ERR_AUDIO_UPSTREAM,
  ORB_ERR_ENCODER_FAILED,
  ORB_ERR_ENCODER_MISSING,
  ORB_ERR_MODEL_NOT_FOUND,
  openAiErrorOf,
  useOpenAiErrors,
  withParam,
} from './openai-errors';
import { ModelCatalog, type OpenAiModel } from './openai-models';
import {
  ffmpegMissing,
  startSpeechEncoder,
  type SpeechEncoder,
  isEncoded,
  SPEECH_CONTENT_TYPES,
  SPEECH_FORMATS,
  SPEECH_OUTPUT_RATE,
  type SpeechFormat,
} from './speech-encoder';

export { ORB_ERR_AUDIO_REQUEST, ORB_ERR_AUDIO_TIMEOUT, ORB_ERR_AUDIO_UPSTREAM } from './openai-errors';
import { AudioCapabilities, checkLanguage, DEFAULT_CAPABILITIES } from '../audio-params';
import { rawPcmUpload } from '../audio';
import { resamplePcm16, toSrt, toVtt, wavHeader } from '../../audio-format';
import type { TranscriptSegment, TranscriptWord } from '../../acp/transcript';

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
  /** The ffmpeg binary that encodes mp3, opus, aac and flac; without it those answer 501. @default 'ffmpeg' */
  readonly ffmpegPath?: string;
}

type ResponseFormat = 'json' | 'text' | 'verbose_json' | 'srt' | 'vtt';
const RESPONSE_FORMATS: readonly ResponseFormat[] = ['json', 'text', 'verbose_json', 'srt', 'vtt'];

type Word = TranscriptWord;
/** A transcript event's segment (services/acp/transcript.ts); words are absent when the model gives none. */
type Segment = Omit<TranscriptSegment, 'words'> & { words?: Word[] };
interface TranscriptData {
  text: string;
  language: string;
  duration: number;
  segments: Segment[];
}
interface AudioData {
  index: number;
  sample_rate: number;
  data: string;
  final: boolean;
}
interface DeltaData {
  index: number;
  text: string;
}

// OpenAI's verbose_json names the language in English words.
const LANGUAGE_NAMES: Record<string, string> = {
  en: 'english',
  de: 'german',
  fr: 'french',
  es: 'spanish',
  it: 'italian',
  pt: 'portuguese',
  nl: 'dutch',
  ja: 'japanese',
  zh: 'chinese',
  ru: 'russian',
  ko: 'korean',
  pl: 'polish',
  tr: 'turkish',
  ar: 'arabic',
  hi: 'hindi',
  sv: 'swedish',
};

function verboseJson(t: TranscriptData, granularities: Set<string>, task: string): object {
  const segments = granularities.has('segment') || !granularities.has('word');
  return {
    task,
    language: LANGUAGE_NAMES[t.language] ?? t.language,
    duration: t.duration,
    text: t.text,
    ...(granularities.has('word') ? { words: t.segments.flatMap((s) => s.words ?? []) } : {}),
    ...(segments
      ? {
          segments: t.segments.map((s) => ({
            id: s.id,
            seek: 0,
            start: s.start,
            end: s.end,
            text: ` ${s.text}`,
            tokens: s.tokens,
            temperature: 0,
            avg_logprob: s.avg_logprob,
            compression_ratio: 1,
            no_speech_prob: 0,
          })),
        }
      : {}),
  };
}

/** Which request parameter a worker's error code is about, for OpenAI's `param`. */
const PARAM_OF_CODE: Record<string, string> = { ORB_ERR_UNKNOWN_VOICE: 'voice', ORB_ERR_TTS_INPUT: 'input' };

function workerError(ev: TurnEvent): Error {
  const d = (ev.data ?? {}) as { code?: string; message?: string; status?: number };
  if (d.code && d.status && d.status >= 400 && d.status < 500) {
    return Object.assign(new Error(d.message ?? d.code), {
      code: d.code,
      statusCode: d.status,
      param: PARAM_OF_CODE[d.code] ?? (d.code.startsWith('ORB_ERR_AUDIO_') ? 'file' : null),
    });
  }
  return new ORB_ERR_AUDIO_UPSTREAM(d.message ?? 'unknown error');
}

/** How the OpenAI client's audio upload looks on our side: which MIME type the worker should assume. */
function uploadContentType(bytes: Buffer, mimetype: string | undefined): string {
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF') return 'audio/wav';
  if (mimetype?.startsWith('audio/pcm') || mimetype?.startsWith('audio/l16')) return mimetype;
  return 'audio/x-unknown'; // the worker sniffs and answers ORB_ERR_AUDIO_FORMAT
}

/** One server-sent event carrying `data` as JSON (the official client's Stream parses exactly this). */
function sse(data: object): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

const TRANSCRIPTION_FIELDS = new Set([
  'model',
  'language',
  'prompt',
  'response_format',
  'temperature',
  'stream',
  'chunking_strategy',
  'include[]',
  'include',
]);
const TRANSLATION_FIELDS = new Set(['model', 'prompt', 'response_format', 'temperature']);

interface Upload {
  file: Buffer;
  mimetype?: string;
  fields: Record<string, string>;
  granularities: Set<string>;
}

async function openAiAudioRoutes(app: FastifyInstance, opts: OpenAiAudioOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxUpload = opts.maxUploadBytes ?? 25 * 1024 * 1024;
  const ffmpegPath = opts.ffmpegPath ?? 'ffmpeg';
  const preHandler = opts.preHandler ? [opts.preHandler] : [];
  const catalog = new ModelCatalog(new ModelRegistry(opts.redis, opts.keys));
  // This context only: the rest of the gateway keeps the ORB's own error shape.
  useOpenAiErrors(app);
  // Scoped to these routes: the multipart parser must not change how the rest of the gateway reads bodies.
  await app.register(fastifyMultipart, { limits: { fileSize: maxUpload, files: 1, fields: 20, fieldSize: 1024 } });

  /**
   * Runs one job as an ephemeral session and yields its events (a `turn.error` is thrown as its 4xx) until the
   * caller stops iterating; then the session's keys are deleted.
   */
  async function* jobEvents(
    queue: typeof ACP_QUEUES.whisperx | typeof ACP_QUEUES.xtts,
    kind: string,
    build: (session: string, turn: string) => Promise<AcpPart[]>,
    req: FastifyRequest,
    isLast: (ev: TurnEvent) => boolean,
  ): AsyncGenerator<TurnEvent> {
    const session = `audio-${randomUUID()}`;
    let finished = false;
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
        if (ev.type === 'turn.error') {
          finished = true;
          throw workerError(ev);
        }
        if (isLast(ev)) finished = true;
        yield ev;
      }
      throw new ORB_ERR_AUDIO_TIMEOUT(queue, timeoutMs);
    } finally {
      clearTimeout(timer);
      req.raw.socket?.off('close', onClose);
      // Left before the last result: tell the worker to stop (first, so what it writes after our delete is dropped too).
      if (!finished) await markAbandoned(opts.redis, opts.keys, session, turn, timeoutMs + 60_000).catch(() => undefined);
      await opts.redis
        .del(opts.keys.turnEvents(session), opts.keys.turnSeq(session), opts.keys.turnAudio(session, turn), opts.keys.turn(session, turn))
        .catch(() => undefined);
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

  /** Like firstOf, but closes the events (deleting the session) when it fails: nothing will read them after. */
  async function firstOrClose<T>(events: AsyncGenerator<TurnEvent>, pick: (ev: TurnEvent) => T | undefined): Promise<T> {
    try {
      return await firstOf(events, pick);
    } catch (err) {
      await events.return(undefined);
      throw err;
    }
  }

  async function readUpload(req: FastifyRequest, allowed: Set<string>): Promise<Upload> {
    if (!req.isMultipart()) throw new ORB_ERR_AUDIO_REQUEST('send multipart/form-data with a `file` field');
    let file: Buffer | undefined;
    let mimetype: string | undefined;
    const fields: Record<string, string> = {};
    const granularities = new Set<string>();
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file')
            throw withParam(new ORB_ERR_AUDIO_REQUEST(`unexpected file field '${part.fieldname}'`), part.fieldname);
          file = await part.toBuffer();
          // busboy drops the part's media type parameters: raw PCM here is 16 kHz PCM16LE, audio/L16 (rate required) is refused.
          mimetype = part.mimetype;
        } else if (typeof part.value !== 'string' || part.valueTruncated || part.fieldnameTruncated) {
          throw new ORB_ERR_AUDIO_REQUEST(`field '${part.fieldname.slice(0, 40)}' must be a plain text value of at most 1024 bytes`);
        } else if (
          allowed.has('language') &&
          (part.fieldname === 'timestamp_granularities[]' || part.fieldname === 'timestamp_granularities')
        ) {
          granularities.add(String(part.value));
        } else if (allowed.has(part.fieldname)) {
          if (Object.prototype.hasOwnProperty.call(fields, part.fieldname)) {
            throw withParam(new ORB_ERR_AUDIO_REQUEST(`field '${part.fieldname}' given more than once`), part.fieldname);
          }
          fields[part.fieldname] = part.value;
        } else {
          throw withParam(new ORB_ERR_AUDIO_REQUEST(`unknown parameter '${part.fieldname.slice(0, 40)}'`), part.fieldname);
        }
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_REQ_FILE_TOO_LARGE')
        throw withParam(Object.assign(new ORB_ERR_AUDIO_REQUEST(`file larger than ${maxUpload} bytes`), { statusCode: 413 }), 'file');
      if (code?.startsWith('ORB_ERR_')) throw err;
      // Anything else here is the body not being the multipart it claims (busboy: bad boundary, cut-off part…).
      throw new ORB_ERR_AUDIO_REQUEST(`malformed multipart body: ${(err as Error).message}`);
    }
    if (!file) throw withParam(new ORB_ERR_AUDIO_REQUEST('missing `file`'), 'file');
    if (!fields.model) throw withParam(new ORB_ERR_AUDIO_REQUEST('missing `model`'), 'model');
    const format = fields.response_format || 'json';
    if (!RESPONSE_FORMATS.includes(format as ResponseFormat)) {
      throw withParam(
        new ORB_ERR_AUDIO_REQUEST(`response_format '${format}' is not one of ${RESPONSE_FORMATS.join(', ')}`),
        'response_format',
      );
    }
    for (const g of granularities) {
      if (g !== 'word' && g !== 'segment')
        throw withParam(
          new ORB_ERR_AUDIO_REQUEST(`timestamp_granularities[] must be word or segment, got '${g}'`),
          'timestamp_granularities[]',
        );
    }
    const language = fields.language;
    // Checked against the languages the ASR model has tokens for (ORB_ASR_LANGUAGES) before any job is queued.
    if (language !== undefined && language !== '') {
      try {
        checkLanguage(language, opts.capabilities ?? DEFAULT_CAPABILITIES);
      } catch (err) {
        throw withParam(err as Error, 'language');
      }
    }
    if (fields.temperature !== undefined) {
      const t = Number(fields.temperature);
      if (fields.temperature === '' || !Number.isFinite(t) || t < 0 || t > 1)
        throw withParam(new ORB_ERR_AUDIO_REQUEST(`temperature must be a number from 0 to 1, got '${fields.temperature}'`), 'temperature');
    }
    if (fields.stream !== undefined && fields.stream !== 'true' && fields.stream !== 'false') {
      throw withParam(new ORB_ERR_AUDIO_REQUEST(`stream must be true or false, got '${fields.stream}'`), 'stream');
    }
    return { file, mimetype, fields, granularities };
  }

  /** Transcription or translation: one whisperx job, answered in the requested format or as server-sent events. */
  async function recognize(req: FastifyRequest, reply: FastifyReply, task: 'transcribe' | 'translate'): Promise<FastifyReply> {
    const up = await readUpload(req, task === 'transcribe' ? TRANSCRIPTION_FIELDS : TRANSLATION_FIELDS);
    const format = (up.fields.response_format || 'json') as ResponseFormat;
    const stream = up.fields.stream === 'true';
    // OpenAI streams transcripts as text: its events carry no timestamps or subtitles.
    if (stream && format !== 'json' && format !== 'text') {
      throw withParam(
        new ORB_ERR_AUDIO_REQUEST(
          `stream=true answers transcript.text.* events; response_format '${format}' cannot be streamed (use json or text)`,
        ),
        'response_format',
      );
    }
    await catalog.resolve(up.fields.model, 'automatic-speech-recognition');
    const language = up.fields.language || undefined;
    const rawPcm = rawPcmUpload(up.mimetype ?? '', up.file);
    const upload = rawPcm?.bytes ?? up.file;
    const events = jobEvents(
      ACP_QUEUES.whisperx,
      'asr.transcribe',
      async (session, turn) => {
        // The audio waits in the vault (like a voice turn's utterance) so the job entry stays small.
        const key = opts.keys.turnAudio(session, turn);
        await opts.redis.set(key, upload, 'PX', timeoutMs + 60_000);
        return [
          { content_type: rawPcm?.contentType ?? uploadContentType(upload, up.mimetype), content_ref: key },
          jsonPart({ fan_out: false, task, ...(stream ? { stream: true } : {}), ...(language ? { language } : {}) }),
        ];
      },
      req,
      (ev) => ev.type === 'transcript',
    );
    if (stream) return streamTranscript(events, reply);
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
        return reply.send(verboseJson(t, up.granularities, task));
      default:
        return reply.send({ text: t.text });
    }
  }

  /**
   * `transcript.text.delta` per decoded window (the worker's `transcript.delta`), then `transcript.text.done`.
   * Waits for the first of them before answering, so bad audio still gets its 4xx; a failure after that is sent
   * as an `error` event, which the official client throws.
   */
  async function streamTranscript(events: AsyncGenerator<TurnEvent>, reply: FastifyReply): Promise<FastifyReply> {
    const first = await firstOrClose(events, (ev) => (ev.type === 'transcript.delta' || ev.type === 'transcript' ? ev : undefined));
    async function* body(): AsyncGenerator<string> {
      let text = '';
      try {
        for (let ev: TurnEvent = first; ;) {
          if (ev.type === 'transcript.delta') {
            const d = ev.data as DeltaData;
            if (d.text) {
              const delta = text ? ` ${d.text}` : d.text;
              text += delta;
              yield sse({ type: 'transcript.text.delta', delta });
            }
          } else if (ev.type === 'transcript') {
            yield sse({ type: 'transcript.text.done', text: (ev.data as TranscriptData).text });
            return;
          }
          const r = await events.next();
          if (r.done) throw new ORB_ERR_AUDIO_UPSTREAM('event stream ended early');
          ev = r.value;
        }
      } catch (err) {
        yield sse(openAiErrorOf(err as Error).body);
      } finally {
        await events.return(undefined);
      }
    }
    return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send(Readable.from(body()));
  }

  app.post('/v1/audio/transcriptions', { preHandler }, (req, reply) => recognize(req, reply, 'transcribe'));
  app.post('/v1/audio/translations', { preHandler }, (req, reply) => recognize(req, reply, 'translate'));

  const speechSchema = {
    body: {
      type: 'object',
      required: ['model', 'input', 'voice'],
      properties: {
        model: { type: 'string', minLength: 1, maxLength: 200 },
        input: { type: 'string', minLength: 1, maxLength: opts.maxInputChars ?? 4096, pattern: '\\S' },
        voice: {
          anyOf: [
            { type: 'string', minLength: 1, maxLength: 200 },
            { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1 } } },
          ],
        },
        instructions: { type: 'string', maxLength: 4096 },
        response_format: { type: 'string', enum: SPEECH_FORMATS },
        speed: { type: 'number', minimum: 0.25, maximum: 4 },
        stream_format: { type: 'string', enum: ['audio', 'sse'] },
      },
    },
  } as const;

  interface SpeechBody {
    model: string;
    input: string;
    voice: string | { id: string };
    instructions?: string;
    response_format?: SpeechFormat;
    speed?: number;
    stream_format?: 'audio' | 'sse';
  }

  /** The voice a speech request gets: a served voice by name, an OpenAI name (the model's own voice when it is one), or 400. */
  function pickVoice(model: OpenAiModel, asked: string, openAiNames: readonly string[]): string | undefined {
    const served = model.voices ?? [];
    if (served.includes(asked)) return asked;
    if (openAiNames.includes(asked)) return model.root ? undefined : model.id;
    throw withParam(
      Object.assign(
        new Error(
          `Unknown voice: '${asked}' (served: ${served.join(', ')}; OpenAI's ${openAiNames.join(', ')} speak with the default voice)`,
        ),
        { code: 'ORB_ERR_UNKNOWN_VOICE', statusCode: 400 },
      ),
      'voice',
    );
  }

  const speechParams = new Set(Object.keys(speechSchema.body.properties));

  app.post<{ Body: SpeechBody }>('/v1/audio/speech', { schema: speechSchema, preHandler }, async (req, reply) => {
    const b = req.body;
    // Checked here, not by the schema: whether Ajv strips or refuses extra properties is the app's setting.
    const unknown = Object.keys(b).find((k) => !speechParams.has(k));
    if (unknown !== undefined) throw withParam(new ORB_ERR_AUDIO_REQUEST(`unknown parameter '${unknown}'`), unknown);
    const format: SpeechFormat = b.response_format ?? 'mp3';
    const model = await catalog.resolve(b.model, 'text-to-speech');
    const voice = pickVoice(model, typeof b.voice === 'string' ? b.voice : b.voice.id, OPENAI_VOICES);
    if (isEncoded(format)) {
      const missing = await ffmpegMissing(ffmpegPath);
      if (missing) throw withParam(new ORB_ERR_ENCODER_MISSING(format, missing), 'response_format');
    }
    const events = jobEvents(
      ACP_QUEUES.xtts,
      'tts.speak',
      async () => [textPart(b.input), jsonPart({ ...(voice ? { voice } : {}), speed: b.speed ?? 1 })],
      req,
      (ev) => ev.type === 'audio' && (ev.data as AudioData).final,
    );
    // ffmpeg starts while the first sentence is synthesized, so its start-up is not on the way to the first byte.
    const encoder = isEncoded(format) ? startSpeechEncoder(format, ffmpegPath) : undefined;
    // Wait for the first sentence before answering, so worker errors still become a proper 4xx.
    let first: AudioData;
    try {
      first = await firstOrClose(events, (ev) => (ev.type === 'audio' ? (ev.data as AudioData) : undefined));
    } catch (err) {
      encoder?.kill();
      throw err;
    }
    const audio = speechBytes(format, first, events, encoder);
    if (b.stream_format === 'sse') {
      async function* body(): AsyncGenerator<string> {
        try {
          for await (const chunk of audio) yield sse({ type: 'speech.audio.delta', audio: chunk.toString('base64') });
          yield sse({ type: 'speech.audio.done' });
        } catch (err) {
          yield sse(openAiErrorOf(err as Error).body);
        }
      }
      return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send(Readable.from(body()));
    }
    if (format === 'wav') {
      const chunks: Buffer[] = [];
      for await (const c of audio) chunks.push(c);
      return reply.type(SPEECH_CONTENT_TYPES.wav).send(Buffer.concat(chunks));
    }
    if (format === 'pcm') reply.header('x-sample-rate', String(SPEECH_OUTPUT_RATE));
    return reply.type(SPEECH_CONTENT_TYPES[format]).send(Readable.from(audio));
  });

  /** PCM16 of each sentence as its `audio` event arrives, until the final one; closes the events when done. */
  async function* sentences(first: AudioData, events: AsyncGenerator<TurnEvent>): AsyncGenerator<Buffer> {
    try {
      yield Buffer.from(first.data, 'base64');
      if (first.final) return;
      for (;;) {
        const a = await firstOf(events, (ev) => (ev.type === 'audio' ? (ev.data as AudioData) : undefined));
        yield Buffer.from(a.data, 'base64');
        if (a.final) return;
      }
    } finally {
      await events.return(undefined);
    }
  }

  /**
   * The reply's bytes in `format`: pcm and compressed formats chunk by chunk as synthesized (resampled to 24 kHz, as
   * OpenAI's are), wav in one piece at the voice's rate (its header needs the length).
   */
  async function* speechBytes(
    format: SpeechFormat,
    first: AudioData,
    events: AsyncGenerator<TurnEvent>,
    encoder?: SpeechEncoder,
  ): AsyncGenerator<Buffer> {
    const rate = first.sample_rate;
    const pcm = sentences(first, events);
    async function* at24k(): AsyncGenerator<Buffer> {
      for await (const c of pcm) yield resamplePcm16(c, rate, SPEECH_OUTPUT_RATE);
    }
    if (format === 'pcm') {
      yield* at24k();
    } else if (format === 'wav') {
      const chunks: Buffer[] = [];
      for await (const c of pcm) chunks.push(c);
      const data = Buffer.concat(chunks);
      yield Buffer.concat([wavHeader(data.length, rate), data]);
    } else {
      try {
        // Nothing to say (input without words): a few ms of silence, since an MP3 without a frame does not decode.
        async function* nonEmpty(): AsyncGenerator<Buffer> {
          let bytes = 0;
          for await (const c of at24k()) {
            bytes += c.length;
            yield c;
          }
          if (!bytes) yield Buffer.alloc((SPEECH_OUTPUT_RATE / 20) * 2);
        }
        yield* encoder!.encode(nonEmpty());
      } catch (err) {
        const code = (err as { code?: string }).code;
        // The worker's own errors keep their code; anything else went wrong in ffmpeg.
        throw typeof code === 'string' && code.startsWith('ORB_ERR_') ? err : new ORB_ERR_ENCODER_FAILED((err as Error).message);
      }
    }
  }

  app.get('/v1/models', { preHandler }, async () => ({ object: 'list', data: await catalog.list() }));
  // Served IDs may hold a slash (`openai/whisper-small`), so the rest of the path is the ID.
  app.get<{ Params: { '*': string } }>('/v1/models/*', { preHandler }, async (req) => {
    const id = req.params['*'];
    const model = (await catalog.list()).find((m) => m.id === id);
    if (!model) throw withParam(new ORB_ERR_MODEL_NOT_FOUND(`'${id}'`), 'model');
    return model;
  });
}

export const openAiAudioPlugin = fp(
  async (app: FastifyInstance, opts: OpenAiAudioOptions) => {
    await app.register(openAiAudioRoutes, opts);
  },
  { fastify: '5.x', name: 'orb-openai-audio' },
);

export { toSrt as formatSrt, toVtt as formatVtt, verboseJson as formatVerboseJson, wavHeader, resamplePcm16 };
