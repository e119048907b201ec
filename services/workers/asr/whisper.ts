import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { OnnxModel, ort, type ExecutionProvider, type ModelLogger } from '../../inference/model';
import { LogMel, WHISPER_LOG_MEL } from './log-mel';

export interface WhisperLoadOptions {
  /** Directory in the Hugging Face optimum ONNX layout (graphs at the top level or under onnx/). */
  dir: string;
  executionProvider?: ExecutionProvider;
  intraOpThreads?: number;
  interOpThreads?: number;
  logger?: ModelLogger;
}

interface WhisperConfig {
  decoder_layers: number;
  decoder_attention_heads: number;
  d_model: number;
}

interface GenerationConfig {
  decoder_start_token_id: number;
  eos_token_id: number;
  no_timestamps_token_id: number;
  lang_to_id?: Record<string, number>;
  task_to_id?: Record<string, number>;
  suppress_tokens?: number[];
  begin_suppress_tokens?: number[];
  max_length?: number;
}

export interface DecodeRequest {
  /** ISO 639-1 code; undefined detects the language from the first chunk. */
  language?: string;
  task?: 'transcribe' | 'translate';
  maxNewTokens?: number;
  /** Predict timestamp tokens (when the vocabulary has them). @default true */
  timestamps?: boolean;
}

/** Times in seconds from the start of the chunk's window. */
export interface ChunkSegment {
  start: number;
  end: number;
  text: string;
  tokens: number[];
}

export interface ChunkTranscript {
  text: string;
  tokens: number[];
  avgLogprob: number;
  /** From timestamp tokens; empty when decoded without them. */
  segments: ChunkSegment[];
}

/** Whisper's timestamp tokens are 20 ms apart. */
const TIME_PRECISION = 0.02;
/** The first timestamp may be at most 1 s into the window (HF's max_initial_timestamp_index = 50). */
const MAX_INITIAL_TIMESTAMP = 50;

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Rows of a [B, T, D] encoder output as a new [rows, T, D] tensor (the whole tensor when all rows are kept in order). */
export function selectRows(enc: ort.Tensor, rows: readonly number[]): ort.Tensor {
  if (rows.length === enc.dims[0] && rows.every((r, i) => r === i)) return enc;
  const per = enc.dims[1] * enc.dims[2];
  const src = enc.data as Float32Array;
  const out = new Float32Array(per * rows.length);
  rows.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
  return new ort.Tensor('float32', out, [rows.length, enc.dims[1], enc.dims[2]]);
}

/** The decoder graphs of an optimum export: one merged graph, or a first-step graph plus a with-past graph. */
type DecoderGraphs = { merged: OnnxModel } | { first: OnnxModel; withPast: OnnxModel };

/**
 * Whisper encoder/decoder on onnxruntime-node: batched encoder runs and greedy decoding with the KV cache,
 * following the input/output names of Hugging Face optimum exports (past_key_values.N.{decoder,encoder}.{key,value},
 * present.N.*, use_cache_branch).
 */
export class WhisperModel {
  readonly logMel: LogMel;

  private constructor(
    readonly dir: string,
    private readonly encoder: OnnxModel,
    private readonly decoder: DecoderGraphs,
    private readonly tokenizer: Tokenizer,
    readonly config: WhisperConfig,
    readonly gen: GenerationConfig,
    nMels: number,
  ) {
    this.logMel = new LogMel({ ...WHISPER_LOG_MEL, nMels });
  }

  static async load(opts: WhisperLoadOptions): Promise<WhisperModel> {
    const graphDir = existsSync(join(opts.dir, 'encoder_model.onnx')) ? opts.dir : join(opts.dir, 'onnx');
    const need = (f: string) => {
      const p = join(f.endsWith('.onnx') ? graphDir : opts.dir, f);
      if (!existsSync(p)) throw new Error(`Whisper model directory ${opts.dir} lacks ${f}`);
      return p;
    };
    const config = readJson<WhisperConfig>(need('config.json'));
    const gen = readJson<GenerationConfig>(need('generation_config.json'));
    const pre = readJson<{ feature_size?: number }>(need('preprocessor_config.json'));
    const tokCfg = existsSync(join(opts.dir, 'tokenizer_config.json')) ? readJson<object>(join(opts.dir, 'tokenizer_config.json')) : {};
    const tokenizer = new Tokenizer(readJson<object>(need('tokenizer.json')), tokCfg);
    const load = (path: string) =>
      OnnxModel.load({
        path,
        executionProvider: opts.executionProvider,
        intraOpThreads: opts.intraOpThreads,
        interOpThreads: opts.interOpThreads,
        logger: opts.logger,
      });
    const encoder = await load(need('encoder_model.onnx'));
    let decoder: DecoderGraphs;
    if (existsSync(join(graphDir, 'decoder_model_merged.onnx'))) {
      decoder = { merged: await load(join(graphDir, 'decoder_model_merged.onnx')) };
    } else {
      decoder = { first: await load(need('decoder_model.onnx')), withPast: await load(need('decoder_with_past_model.onnx')) };
    }
    if (!encoder.inputNames.includes('input_features'))
      throw new Error(`${encoder.path}: no input 'input_features' (has ${encoder.inputNames.join(', ')})`);
    return new WhisperModel(opts.dir, encoder, decoder, tokenizer, config, gen, pre.feature_size ?? 80);
  }

  get provider(): ExecutionProvider {
    return this.encoder.provider;
  }

  /** Log-mel features of up to 30 s chunks, stacked as [B, nMels, 3000], through one encoder run. */
  async encode(chunks: Float32Array[]): Promise<ort.Tensor> {
    const { nMels, nFrames } = this.logMel.opts;
    const per = nMels * nFrames;
    const feats = new Float32Array(per * chunks.length);
    chunks.forEach((c, b) => this.logMel.compute(c, feats.subarray(b * per, (b + 1) * per)));
    const out = await this.encoder.run({ input_features: new ort.Tensor('float32', feats, [chunks.length, nMels, nFrames]) });
    return out.last_hidden_state ?? out[this.encoder.outputNames[0]];
  }

  /** Id of <|0.00|>, or undefined when the vocabulary has no timestamp tokens. */
  get timestampBegin(): number | undefined {
    const begin = this.gen.no_timestamps_token_id + 1;
    return this.tokenizer.token_to_id('<|0.00|>') === begin ? begin : undefined;
  }

  languageToken(lang: string): number | undefined {
    return this.gen.lang_to_id?.[`<|${lang}|>`] ?? this.tokenizer.token_to_id(`<|${lang}|>`);
  }

  private emptyPast(batch: number, encSeq = 0): Record<string, ort.Tensor> {
    const H = this.config.decoder_attention_heads;
    const Dh = this.config.d_model / H;
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.config.decoder_layers; l++) {
      for (const kv of ['key', 'value']) {
        feeds[`past_key_values.${l}.decoder.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [batch, H, 0, Dh]);
        feeds[`past_key_values.${l}.encoder.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [batch, H, encSeq, Dh]);
      }
    }
    return feeds;
  }

  private async step(
    inputIds: bigint[][],
    enc: ort.Tensor,
    past: Record<string, ort.Tensor> | null,
  ): Promise<{ logits: ort.Tensor; past: Record<string, ort.Tensor> }> {
    const B = inputIds.length;
    const S = inputIds[0].length;
    const ids = new ort.Tensor('int64', BigInt64Array.from(inputIds.flat()), [B, S]);
    let out: ort.InferenceSession.ReturnType;
    if ('merged' in this.decoder) {
      out = await this.decoder.merged.run({
        input_ids: ids,
        encoder_hidden_states: enc,
        use_cache_branch: new ort.Tensor('bool', Uint8Array.from([past ? 1 : 0]), [1]),
        ...(past ?? this.emptyPast(B)),
      });
    } else if (!past) {
      out = await this.decoder.first.run({ input_ids: ids, encoder_hidden_states: enc });
    } else {
      out = await this.decoder.withPast.run({ input_ids: ids, encoder_hidden_states: enc, ...past });
    }
    const next: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.config.decoder_layers; l++) {
      for (const kv of ['key', 'value']) {
        next[`past_key_values.${l}.decoder.${kv}`] = out[`present.${l}.decoder.${kv}`];
        // Cross-attention K/V are computed once, on the first step, and reused afterwards.
        next[`past_key_values.${l}.encoder.${kv}`] = past?.[`past_key_values.${l}.encoder.${kv}`] ?? out[`present.${l}.encoder.${kv}`];
      }
    }
    return { logits: out.logits, past: next };
  }

  /** Language of the first encoded row: argmax of the language tokens after <|startoftranscript|>. */
  async detectLanguage(enc: ort.Tensor, row = 0): Promise<string> {
    const langs = Object.entries(this.gen.lang_to_id ?? {});
    if (!langs.length) return 'en';
    const first = selectRows(enc, [row]);
    const { logits } = await this.step([[BigInt(this.gen.decoder_start_token_id)]], first, null);
    const data = logits.data as Float32Array;
    let best = langs[0];
    for (const l of langs) if (data[l[1]] > data[best[1]]) best = l;
    return best[0].slice(2, -2);
  }

  /**
   * Greedy decoding of every encoded row at once. With timestamps, the rules of Whisper's timestamp logits
   * processor apply: the first token is a timestamp (≤ 1 s), timestamps come in pairs and never decrease,
   * and a timestamp is forced when their total probability beats the best text token.
   */
  async decode(enc: ort.Tensor, req: DecodeRequest & { language: string }): Promise<ChunkTranscript[]> {
    const B = enc.dims[0];
    const g = this.gen;
    const lang = this.languageToken(req.language);
    if (lang === undefined) throw new Error(`language '${req.language}' is not in this model's vocabulary`);
    const task = g.task_to_id?.[req.task ?? 'transcribe'];
    const tsBegin = req.timestamps === false ? undefined : this.timestampBegin;
    const prompt = [
      g.decoder_start_token_id,
      lang,
      ...(task !== undefined ? [task] : []),
      ...(tsBegin === undefined ? [g.no_timestamps_token_id] : []),
    ].map(BigInt);
    const maxNew = Math.min(req.maxNewTokens ?? 224, (g.max_length ?? 448) - prompt.length);
    const suppress = new Set(g.suppress_tokens ?? []);
    const beginSuppress = new Set(g.begin_suppress_tokens ?? []);
    const tokens: number[][] = Array.from({ length: B }, () => []);
    const logprob = new Array<number>(B).fill(0);
    const done = new Array<boolean>(B).fill(false);
    let input = Array.from({ length: B }, () => prompt);
    let past: Record<string, ort.Tensor> | null = null;
    for (let t = 0; t < maxNew && !done.every(Boolean); t++) {
      const r = await this.step(input, enc, past);
      past = r.past;
      const [, S, V] = r.logits.dims;
      const data = r.logits.data as Float32Array;
      input = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          input.push([BigInt(g.eos_token_id)]);
          continue;
        }
        const row = data.subarray((b * S + S - 1) * V, (b * S + S) * V);
        const allowed = this.allowedTokens(V, t, tokens[b], tsBegin, suppress, beginSuppress, row);
        let best = -1;
        let max = -Infinity;
        for (let v = 0; v < V; v++) {
          if (allowed(v) && row[v] > max) {
            max = row[v];
            best = v;
          }
        }
        let lse = 0;
        for (let v = 0; v < V; v++) lse += Math.exp(row[v] - max);
        logprob[b] += -Math.log(lse);
        if (best === g.eos_token_id) done[b] = true;
        else tokens[b].push(best);
        input.push([BigInt(best)]);
      }
    }
    return tokens.map((tk, b) => {
      const text = tk.filter((id) => id < g.eos_token_id);
      return {
        tokens: text,
        text: this.tokenizer.decode(text, { skip_special_tokens: true }).trim(),
        avgLogprob: logprob[b] / Math.max(1, tk.length + 1),
        segments: tsBegin === undefined ? [] : this.segmentsOf(tk, tsBegin),
      };
    });
  }

  private allowedTokens(
    V: number,
    step: number,
    seq: readonly number[],
    tsBegin: number | undefined,
    suppress: Set<number>,
    beginSuppress: Set<number>,
    row: Float32Array,
  ): (v: number) => boolean {
    const g = this.gen;
    const base = (v: number) => !suppress.has(v) && !(step === 0 && beginSuppress.has(v)) && v !== g.no_timestamps_token_id;
    if (tsBegin === undefined)
      return (v) => base(v) && (v <= g.no_timestamps_token_id || v === g.eos_token_id) && v !== g.no_timestamps_token_id;
    const isTs = (v: number) => v >= tsBegin;
    const isText = (v: number) => v < g.eos_token_id;
    if (step === 0) return (v) => isTs(v) && v <= tsBegin + MAX_INITIAL_TIMESTAMP;
    const last = seq[seq.length - 1];
    const lastTs = isTs(last);
    const penultimateTs = seq.length < 2 || isTs(seq[seq.length - 2]);
    let maxTs = tsBegin;
    for (const v of seq) if (isTs(v) && v > maxTs) maxTs = v;
    // After a closed pair comes text; after an opening timestamp, its closing timestamp (or the end).
    const mustText = lastTs && penultimateTs;
    const mustTs = lastTs && !penultimateTs;
    // Force a timestamp when the timestamps' total probability beats the most likely text token.
    let forceTs = false;
    if (!mustText && !mustTs) {
      let mx = -Infinity;
      for (let v = 0; v < V; v++) if (row[v] > mx) mx = row[v];
      let z = 0;
      let tsMass = 0;
      let bestText = 0;
      for (let v = 0; v < V; v++) {
        const p = Math.exp(row[v] - mx);
        z += p;
        if (isTs(v)) tsMass += p;
        else if (isText(v) && p > bestText) bestText = p;
      }
      forceTs = tsMass / z > bestText / z;
    }
    return (v) => {
      if (!base(v)) return false;
      if (isTs(v)) return !mustText && v >= maxTs;
      if (v === g.eos_token_id) return !mustText && !forceTs;
      if (!isText(v)) return false;
      return !mustTs && !forceTs;
    };
  }

  /** Pairs of timestamp tokens around text become segments; text left open ends at the last timestamp seen. */
  private segmentsOf(seq: readonly number[], tsBegin: number): ChunkSegment[] {
    const out: ChunkSegment[] = [];
    let start: number | undefined;
    let text: number[] = [];
    let lastTime = 0;
    const flush = (end: number) => {
      if (start !== undefined && text.length) {
        out.push({ start, end, tokens: text, text: this.tokenizer.decode(text, { skip_special_tokens: true }).trim() });
      }
      text = [];
    };
    for (const v of seq) {
      if (v >= tsBegin) {
        const time = Math.round((v - tsBegin) * TIME_PRECISION * 100) / 100;
        lastTime = time;
        if (start === undefined || !text.length) start = time;
        else {
          flush(time);
          start = undefined;
        }
      } else if (v < this.gen.eos_token_id) {
        text.push(v);
      }
    }
    flush(lastTime);
    return out;
  }

  async dispose(): Promise<void> {
    await this.encoder.dispose();
    if ('merged' in this.decoder) await this.decoder.merged.dispose();
    else await Promise.all([this.decoder.first.dispose(), this.decoder.withPast.dispose()]);
  }
}
