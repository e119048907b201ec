/**
 * Role `whisperx`: consumes `acp:jobs:whisperx` (`asr.transcribe`). Audio comes inline (base64) or by vault
 * reference (the gateway's utterance key `turn:{sid}:{turnId}:audio`); the content type says WAV or raw PCM16LE
 * (`audio/pcm;rate=16000`). Emits `transcript` {text, final, source, language, duration, segments} (after a
 * `transcript.delta` per decoded window when the job asks to `stream`); for voice
 * turns (JSON part without `fan_out: false`) it then fans the transcript out to the cores and CALI.
 * Bad audio is the caller's fault, not a retryable failure: `turn.error` {code, message, status} (+ `turn.end`
 * for voice turns) and the job is acknowledged.
 */
import { ACP_QUEUES } from '../../contract';
import { existsSync, readFileSync, statSync } from 'fs';
import { basename, join } from 'path';
import { AcpBus, AcpPart, dropIfAbandoned, fanOutTranscript, Job, JobRejectedError, partContent, ServedModel } from '../../acp';
import { loadEnv } from '../../config/env';
import { ASR_ENV } from '../../config/asr';
import { isCodedError } from '../audio/errors';
import { decodeForAsr, type DecodeOptions } from '../audio/pcm';
import { SileroVad } from '../../inference/vad';
import { OnnxModel } from '../../inference/model';
import { RoleFactory, WorkerRole } from '../runtime';
import { Transcriber, type Transcript } from './transcriber';
import { WhisperModel } from './whisper';

/** The JSON part of an `asr.transcribe` job. */
export interface AsrJobOptions {
  language?: string;
  task?: 'transcribe' | 'translate';
  /** Emit `transcript.delta` {index, text, segments} per window as it is decoded, before the final `transcript`. @default false */
  stream?: boolean;
  /** false: only emit the transcript (REST transcription). @default true — voice turn, fan out to cores + CALI */
  fan_out?: boolean;
  speak?: boolean;
  cores?: number;
  quorum?: number;
}

/** `audio/pcm;rate=16000` → pcm16 at 16000; `audio/wav` (and aliases) → wav; anything else → auto-sniff. */
export function audioFormatOf(contentType: string): DecodeOptions {
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (type === 'audio/pcm' || type === 'audio/l16') {
    const rate = Number(params.find((p) => p.startsWith('rate='))?.slice(5) ?? 16000);
    return { format: 'pcm16', pcmSampleRate: rate };
  }
  return { format: 'auto' };
}

export async function readAudioPart(
  job: Job,
  redis: { getBuffer(key: string): Promise<Buffer | null> },
): Promise<{ part: AcpPart; bytes: Buffer }> {
  const part = job.envelope.parts.find((p) => p.content_type.startsWith('audio/'));
  if (!part) throw new JobRejectedError('asr.transcribe needs an audio/* part');
  if (part.content_ref) {
    // Keys are referenced by their full (prefixed) name, as the gateway wrote them.
    const bytes = await redis.getBuffer(part.content_ref);
    return { part, bytes: bytes ?? Buffer.alloc(0) };
  }
  if (typeof part.content !== 'string') throw new JobRejectedError('inline audio must be a base64 string');
  return { part, bytes: Buffer.from(part.content, part.content_encoding === 'base64' ? 'base64' : 'latin1') };
}

/** Emits the transcript and, for voice turns, fans it out to the cores and CALI (or ends a silent turn). */
async function publish(job: Job, opts: AsrJobOptions, t: Transcript, bus: AcpBus): Promise<void> {
  const env = job.envelope;
  await job.emit('transcript', {
    text: t.text,
    final: true,
    source: 'audio',
    language: t.language,
    duration: t.duration,
    segments: t.segments,
  });
  if (opts.fan_out === false) return;
  if (!t.text) {
    // Nothing was said: no verdicts to ask for; the turn ends here.
    await job.emit('turn.end', { outcome: 'ok', reason: 'no_speech' });
    return;
  }
  await fanOutTranscript(bus, {
    session: env.session,
    turn: env.turn,
    text: t.text,
    deadlineMs: env.deadline_ms,
    afterSeq: env.seq ?? 0,
    cores: opts.cores,
    quorum: opts.quorum,
    speak: opts.speak,
    traceparent: env.traceparent,
  });
}

/**
 * The loaded Whisper model as GET /v1/models lists it: the export's `_name_or_path` (e.g. `openai/whisper-small`,
 * its owner before the slash) or the directory name, created when its config was written, with its languages.
 */
export function servedWhisper(dir: string, languages: readonly string[]): ServedModel {
  const configPath = join(dir, 'config.json');
  const cfg = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as { _name_or_path?: string }) : {};
  const id = cfg._name_or_path || basename(dir);
  return {
    id,
    task: 'automatic-speech-recognition',
    created: Math.floor(statSync(existsSync(configPath) ? configPath : dir).mtimeMs / 1000),
    owned_by: id.includes('/') ? id.split('/')[0] : 'ucm4-orb',
    languages,
  };
}

export const asrRole: RoleFactory = (ctx) => {
  const cfg = loadEnv(ASR_ENV, ctx.env);
  let asr: Transcriber | undefined;
  let served: ServedModel | undefined;
  const role: WorkerRole = {
    name: 'whisperx',
    queue: ACP_QUEUES.whisperx,
    batchSize: cfg.batchSize,
    async load() {
      const ep = {
        executionProvider: cfg.executionProvider,
        intraOpThreads: cfg.intraOpThreads,
        interOpThreads: cfg.interOpThreads,
        logger: ctx.log,
      };
      const [whisper, vad] = await Promise.all([
        WhisperModel.load({ dir: cfg.modelDir, ...ep }),
        SileroVad.load({ modelPath: cfg.vadModelPath || undefined, ...ep, intraOpThreads: 1 }),
      ]);
      asr = new Transcriber(whisper, vad);
      served = servedWhisper(
        cfg.modelDir,
        Object.keys(whisper.gen.lang_to_id ?? {}).map((t) => t.slice(2, -2)),
      );
      ctx.log.info({ model: cfg.modelDir, provider: whisper.provider }, 'whisper loaded');
    },
    // The jobs read together share encoder runs (Transcriber.transcribeMany): the WhisperX batching, across requests.
    async handleBatch(jobs) {
      const results: Array<unknown | undefined> = jobs.map(() => undefined);
      const ready: Array<{ k: number; samples: Float32Array; opts: AsrJobOptions }> = [];
      for (const [k, job] of jobs.entries()) {
        const opts = partContent<AsrJobOptions>(job.envelope, 'application/json') ?? {};
        try {
          const { part, bytes } = await readAudioPart(job, ctx.redis);
          const pcm = decodeForAsr(bytes, { ...audioFormatOf(part.content_type), maxDurationS: cfg.maxAudioS });
          ready.push({ k, samples: pcm.samples, opts });
        } catch (err) {
          if (!isCodedError(err)) {
            results[k] = err;
            continue;
          }
          // Bad audio is the caller's fault: report it on the turn and acknowledge the job (a retry cannot help).
          try {
            await job.emit('turn.error', { code: err.code, message: err.message, status: err.statusCode });
            if (opts.fan_out !== false) await job.emit('turn.end', { outcome: 'error' });
          } catch (emitErr) {
            results[k] = emitErr;
          }
        }
      }
      if (!ready.length) return results;
      // Jobs whose REST client left: their session is already deleted, so nothing more may be emitted for them.
      const dropped = new Set<number>();
      const transcripts = await asr!.transcribeMany(
        ready.map(({ k, samples, opts }) => {
          let index = 0;
          return {
            samples,
            opts: {
              language: opts.language,
              task: opts.task,
              stream: opts.stream === true,
              maxNewTokens: cfg.maxNewTokens,
              vad: { threshold: cfg.vadThreshold },
            },
            onSegments: opts.stream
              ? async (segments: Transcript['segments']) => {
                  const env = jobs[k].envelope;
                  // A REST client that left gets no more deltas (the final transcript is checked again in publish).
                  if (dropped.has(k)) return;
                  if (opts.fan_out === false && (await dropIfAbandoned(ctx.redis, ctx.acp.keys, env.session, env.turn))) {
                    dropped.add(k);
                    return;
                  }
                  await jobs[k].emit('transcript.delta', { index: index++, text: segments.map((s) => s.text).join(' '), segments });
                }
              : undefined,
          };
        }),
        cfg.batchSize,
      );
      await Promise.all(
        ready.map(async ({ k, opts }, i) => {
          try {
            const env = jobs[k].envelope;
            const gone = () => opts.fan_out === false && dropIfAbandoned(ctx.redis, ctx.acp.keys, env.session, env.turn);
            if (dropped.has(k) || (await gone())) return;
            await publish(jobs[k], opts, transcripts[i], ctx.acp.bus);
            await gone();
          } catch (err) {
            results[k] = err;
          }
        }),
      );
      return results;
    },
    ready: () => asr !== undefined,
    providers: () => OnnxModel.providersInUse(),
    models: () => (served ? [served] : []),
    async dispose() {
      await asr?.whisper.dispose();
      await asr?.vad.dispose();
    },
  };
  return role;
};
