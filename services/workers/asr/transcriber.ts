import { decodeForAsr, ASR_SAMPLE_RATE, type DecodeOptions } from '../audio/pcm';
import { SileroVad, type SpeechSegment, type VadOptions } from '../../inference/vad';
import { WhisperModel, selectRows, type DecodeRequest } from './whisper';

import type { TranscriptSegment, TranscriptWord } from '../../acp/transcript';

export type { TranscriptSegment, TranscriptWord } from '../../acp/transcript';

/** Called with the segments of one decoded window, in time order, before the next window is decoded. */
export type SegmentsListener = (segments: TranscriptSegment[]) => Promise<void> | void;

export interface Transcript {
  text: string;
  language: string;
  duration: number;
  segments: TranscriptSegment[];
}

export interface TranscribeOptions extends DecodeRequest {
  /** Segments per encoder run. @default 8 */
  batchSize?: number;
  /**
   * Decode this input's windows one at a time and report each window's segments as soon as they are decoded
   * (streaming transcription): the first words leave before the last window is decoded. @default false
   */
  stream?: boolean;
  vad?: VadOptions;
  audio?: DecodeOptions;
}

const MAX_CHUNK = 30 * ASR_SAMPLE_RATE;

/**
 * WhisperX's merge_chunks: join consecutive VAD segments while the joined span stays within 30 s, so each
 * encoder row is one Whisper window and its boundaries are the segment timestamps.
 */
export function mergeChunks(segs: SpeechSegment[], maxSamples = MAX_CHUNK): SpeechSegment[] {
  const out: SpeechSegment[] = [];
  for (const s of segs) {
    // The VAD already splits speech longer than its maxSpeechS, so a single segment never exceeds the window.
    const last = out[out.length - 1];
    if (last && s.end - last.start <= maxSamples) last.end = s.end;
    else out.push({ start: s.start, end: Math.min(s.end, s.start + maxSamples) });
  }
  return out;
}

/**
 * Word times spread over the segment in proportion to word length. Whisper exports without cross-attention
 * outputs give no alignment, so this is an estimate bounded by the VAD times, not a forced alignment.
 */
export function estimateWords(text: string, start: number, end: number): TranscriptWord[] {
  const words = text.split(/\s+/).filter(Boolean);
  const total = words.reduce((n, w) => n + w.length, 0);
  let at = start;
  return words.map((w) => {
    const dur = total ? ((end - start) * w.length) / total : 0;
    const word = { word: w, start: round(at), end: round(at + dur) };
    at += dur;
    return word;
  });
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}

/** The whisperx pipeline: decode → 16 kHz mono → Silero segments → ≤30 s chunks → batched encoder → greedy decoder. */
export class Transcriber {
  constructor(
    readonly whisper: WhisperModel,
    readonly vad: SileroVad,
  ) {}

  async transcribe(audio: Uint8Array, opts: TranscribeOptions = {}): Promise<Transcript> {
    const pcm = decodeForAsr(audio, opts.audio);
    return this.transcribePcm(pcm.samples, opts);
  }

  async transcribePcm(samples: Float32Array, opts: TranscribeOptions = {}): Promise<Transcript> {
    return (await this.transcribeMany([{ samples, opts }], opts.batchSize))[0];
  }

  /**
   * Several inputs (e.g. the jobs of one micro-batch) through shared encoder runs: every input's VAD windows are
   * packed into batches of `batchSize`, so 8 short requests cost one encoder run, not 8. Rows are decoded
   * together per (language, task, timestamps).
   */
  async transcribeMany(
    inputs: ReadonlyArray<{ samples: Float32Array; opts?: TranscribeOptions; onSegments?: SegmentsListener }>,
    batchSize = 8,
  ): Promise<Transcript[]> {
    const items = await Promise.all(
      inputs.map(async ({ samples, opts = {}, onSegments }) => ({
        samples,
        opts,
        onSegments,
        language: opts.language,
        segments: [] as TranscriptSegment[],
        chunks: mergeChunks(await this.vad.segments(samples, opts.vad)),
      })),
    );
    const rows = items.flatMap((item, i) => item.chunks.map((chunk, c) => ({ item: i, chunk, first: c === 0 })));
    for (let b = 0; b < rows.length; b += batchSize) {
      const batch = rows.slice(b, b + batchSize);
      const enc = await this.whisper.encode(batch.map((r) => items[r.item].samples.subarray(r.chunk.start, r.chunk.end)));
      // WhisperX detects the language once, on an input's first window, and keeps it for the whole input.
      for (let k = 0; k < batch.length; k++) {
        const item = items[batch[k].item];
        if (batch[k].first && item.language === undefined) item.language = await this.whisper.detectLanguage(enc, k);
      }
      const groups = new Map<string, number[]>();
      batch.forEach((r, k) => {
        const o = items[r.item].opts;
        // A streaming input's windows each get their own decode, so each can be reported before the next runs.
        const key = `${items[r.item].language}|${o.task ?? 'transcribe'}|${o.timestamps !== false}|${o.maxNewTokens ?? ''}${o.stream ? `|row${k}` : ''}`;
        groups.set(key, [...(groups.get(key) ?? []), k]);
      });
      for (const ks of groups.values()) {
        const first = items[batch[ks[0]].item];
        const texts = await this.whisper.decode(selectRows(enc, ks), { ...first.opts, language: first.language! });
        for (const [j, t] of texts.entries()) {
          const { item, chunk } = batch[ks[j]];
          const segments = items[item].segments;
          const chunkStart = chunk.start / ASR_SAMPLE_RATE;
          const chunkEnd = chunk.end / ASR_SAMPLE_RATE;
          if (!t.text) continue;
          // Timestamp tokens give times inside the window; without them the VAD window is the segment.
          const parts = t.segments.length ? t.segments : [{ start: 0, end: chunkEnd - chunkStart, text: t.text, tokens: t.tokens }];
          const decoded: TranscriptSegment[] = [];
          for (const p of parts) {
            const start = round(Math.min(chunkEnd, chunkStart + p.start));
            const end = round(Math.min(chunkEnd, Math.max(chunkStart + p.end, start)));
            decoded.push({
              id: 0,
              start,
              end,
              text: p.text,
              tokens: p.tokens,
              avg_logprob: t.avgLogprob,
              words: estimateWords(p.text, start, end),
            });
          }
          segments.push(...decoded);
          await items[item].onSegments?.(decoded);
        }
      }
    }
    return items.map((item) => {
      // Rows of one input may be decoded in different groups: order by time, then number.
      const segments = item.segments.sort((a, b) => a.start - b.start).map((sg, id) => ({ ...sg, id }));
      return {
        text: segments.map((sg) => sg.text).join(' '),
        language: item.language ?? item.opts.language ?? 'en',
        duration: round(item.samples.length / ASR_SAMPLE_RATE),
        segments,
      };
    });
  }
}
