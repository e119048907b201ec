/**
 * Role `xtts`: consumes `acp:jobs:xtts` (`tts.speak`): a text/plain part (what to say) and an optional JSON
 * part {voice, speed, end_turn}. Each sentence's audio is emitted as an `audio` event
 * {index, content_type: 'audio/pcm;rate=N', data (base64 PCM16LE), final, sample_rate, voice} as soon as it is
 * synthesized, so the client hears the first sentence while the rest is produced; `end_turn` (spoken turns)
 * closes the turn with `turn.end`.
 */
import { ACP_QUEUES } from '../../contract';
import { statSync } from 'fs';
import { dropIfAbandoned, Job, JobRejectedError, partContent, ServedModel } from '../../acp';
import { loadEnv } from '../../config/env';
import { TTS_ENV } from '../../config/tts';
import { isCodedError } from '../audio/errors';
import { encodePcm16 } from '../audio/pcm';
import { OnnxModel } from '../../inference/model';
import { RoleFactory, WorkerRole } from '../runtime';
import { VoiceLibrary, streamSpeech } from './voices';

export interface TtsJobOptions {
  voice?: string;
  /** 0.25..4 like OpenAI's `speed`. @default 1 */
  speed?: number;
  /** Emit `turn.end` after the last chunk (spoken voice turns). @default false */
  end_turn?: boolean;
}

export const ttsRole: RoleFactory = (ctx) => {
  const cfg = loadEnv(TTS_ENV, ctx.env);
  const lib = new VoiceLibrary(
    cfg.modelDir,
    {
      executionProvider: cfg.executionProvider,
      intraOpThreads: cfg.intraOpThreads,
      interOpThreads: cfg.interOpThreads,
      logger: ctx.log,
    },
    cfg.defaultVoice,
  );
  let loaded = false;
  const role: WorkerRole = {
    name: 'xtts',
    queue: ACP_QUEUES.xtts,
    async load() {
      const voices = lib.list();
      if (!voices.length) throw new Error(`no Piper/VITS voices in MODEL_DIR ${cfg.modelDir}`);
      // Load the default voice now so the first request does not pay for it.
      await lib.voice(cfg.defaultVoice || undefined);
      ctx.log.info({ voices: voices.map((v) => v.name) }, 'voices listed');
      loaded = true;
    },
    async handle(job: Job) {
      const text = partContent<string>(job.envelope, 'text/plain');
      if (typeof text !== 'string' || !text.trim()) throw new JobRejectedError('tts.speak needs a non-empty text/plain part');
      if (text.length > cfg.maxInputChars) {
        await job.emit('turn.error', {
          code: 'ORB_ERR_TTS_INPUT',
          message: `input is ${text.length} characters, limit is ${cfg.maxInputChars}`,
          status: 400,
        });
        return;
      }
      const opts = partContent<TtsJobOptions>(job.envelope, 'application/json') ?? {};
      const speed = Math.min(4, Math.max(0.25, opts.speed ?? 1));
      let voice: Awaited<ReturnType<typeof lib.voice>>;
      try {
        voice = await lib.voice(opts.voice);
      } catch (err) {
        // An unknown voice is the caller's mistake, not a retryable failure: report it and acknowledge the job.
        if (!isCodedError(err)) throw err;
        await job.emit('turn.error', { code: err.code, message: err.message, status: err.statusCode });
        if (opts.end_turn) await job.emit('turn.end', { outcome: 'error' });
        return;
      }
      let emitted = 0;
      const env = job.envelope;
      // A REST client that left: stop synthesizing for nobody (checked again after the last chunk, see abandon.ts).
      const abandoned = () => dropIfAbandoned(ctx.redis, ctx.acp.keys, env.session, env.turn);
      for await (const chunk of streamSpeech(voice, text, { speed })) {
        if (job.signal.aborted) throw new Error('aborted while draining');
        if (await abandoned()) return;
        await job.emit('audio', {
          index: chunk.index,
          content_type: `audio/pcm;rate=${chunk.sampleRate}`,
          sample_rate: chunk.sampleRate,
          voice: voice.info.name,
          data: encodePcm16(chunk.samples).toString('base64'),
          final: chunk.last,
        });
        emitted++;
      }
      if (!emitted)
        await job.emit('audio', {
          index: 0,
          content_type: `audio/pcm;rate=${voice.sampleRate}`,
          sample_rate: voice.sampleRate,
          voice: voice.info.name,
          data: '',
          final: true,
        });
      if (await abandoned()) return;
      if (opts.end_turn) await job.emit('turn.end', { outcome: 'ok' });
    },
    ready: () => loaded,
    providers: () => OnnxModel.providersInUse(),
    // Each Piper/VITS voice is its own ONNX model: listed as a model whose one voice is itself.
    models: (): ServedModel[] =>
      lib.list().map((v) => ({
        id: v.name,
        task: 'text-to-speech',
        created: Math.floor(statSync(v.modelPath).mtimeMs / 1000),
        owned_by: 'ucm4-orb',
        voices: [v.name],
      })),
    dispose: () => lib.dispose(),
  };
  return role;
};
