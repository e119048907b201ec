import { existsSync, readdirSync, readFileSync, statSync } from 'fs';
import { join } from 'path';
import createError from '@fastify/error';
import { phonemize } from 'phonemizer';
import { OPENAI_VOICES } from '../../acp/models';
import { OnnxModel, ort, type ExecutionProvider, type ModelLogger } from '../../inference/model';

export interface VoiceInfo {
  name: string;
  modelPath: string;
  configPath: string;
  sampleRate: number;
  language: string;
}

interface PiperConfig {
  audio: { sample_rate: number };
  espeak?: { voice: string };
  inference?: { noise_scale?: number; length_scale?: number; noise_w?: number };
  phoneme_id_map: Record<string, number[]>;
}

/** Voices in a model directory: `<name>/model.onnx` + `model.onnx.json`, or Piper's `<name>.onnx` + `<name>.onnx.json`. */
export function listVoices(dir: string): VoiceInfo[] {
  if (!existsSync(dir)) return [];
  const found: VoiceInfo[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const p = join(dir, entry);
    let modelPath: string | undefined;
    let name = entry;
    if (statSync(p).isDirectory() && existsSync(join(p, 'model.onnx')) && existsSync(join(p, 'model.onnx.json'))) {
      modelPath = join(p, 'model.onnx');
    } else if (entry.endsWith('.onnx') && existsSync(`${p}.json`)) {
      modelPath = p;
      name = entry.slice(0, -'.onnx'.length);
    }
    if (!modelPath) continue;
    const cfg = JSON.parse(readFileSync(`${modelPath}.json`, 'utf8')) as PiperConfig;
    found.push({
      name,
      modelPath,
      configPath: `${modelPath}.json`,
      sampleRate: cfg.audio.sample_rate,
      language: cfg.espeak?.voice ?? 'en-us',
    });
  }
  return found;
}

export interface VoiceLoadOptions {
  executionProvider?: ExecutionProvider;
  intraOpThreads?: number;
  interOpThreads?: number;
  logger?: ModelLogger;
}

/** One Piper/VITS voice: eSpeak NG phonemes (phonemizer, in wasm) -> phoneme ids -> ONNX -> float PCM. */
export class PiperVoice {
  private constructor(
    readonly info: VoiceInfo,
    private readonly model: OnnxModel,
    private readonly cfg: PiperConfig,
  ) {}

  static async load(info: VoiceInfo, opts: VoiceLoadOptions = {}): Promise<PiperVoice> {
    const cfg = JSON.parse(readFileSync(info.configPath, 'utf8')) as PiperConfig;
    for (const s of ['_', '^', '$']) if (!cfg.phoneme_id_map[s]) throw new Error(`${info.configPath}: phoneme_id_map lacks '${s}'`);
    const model = await OnnxModel.load({ path: info.modelPath, ...opts });
    for (const n of ['input', 'input_lengths', 'scales']) {
      if (!model.inputNames.includes(n))
        throw new Error(`${info.modelPath} is not a Piper/VITS voice: no input '${n}' (has ${model.inputNames.join(', ')})`);
    }
    return new PiperVoice(info, model, cfg);
  }

  get sampleRate(): number {
    return this.cfg.audio.sample_rate;
  }

  async phonemize(text: string): Promise<string> {
    return (await phonemize(text, this.cfg.espeak?.voice ?? 'en-us')).join(' ');
  }

  /** Piper's phonemes_to_ids: BOS, then every phoneme followed by PAD, then EOS; unknown phonemes are skipped. */
  phonemeIds(phonemes: string): number[] {
    const map = this.cfg.phoneme_id_map;
    const ids = [...map['^'], ...map['_']];
    for (const ph of phonemes.normalize('NFD')) {
      const id = map[ph];
      if (id) ids.push(...id, ...map['_']);
    }
    ids.push(...map['$']);
    return ids;
  }

  /** Audio of one sentence; `speed` 2 is twice as fast (Piper's length_scale divided by it). */
  async synthesize(text: string, speed = 1): Promise<Float32Array> {
    const ids = this.phonemeIds(await this.phonemize(text));
    const inf = this.cfg.inference ?? {};
    const out = await this.model.run({
      input: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      input_lengths: new ort.Tensor('int64', BigInt64Array.from([BigInt(ids.length)]), [1]),
      scales: new ort.Tensor(
        'float32',
        Float32Array.from([inf.noise_scale ?? 0.667, (inf.length_scale ?? 1) / speed, inf.noise_w ?? 0.8]),
        [3],
      ),
    });
    return out.output.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** Splits text into sentences (terminal punctuation and what closes it), keeping nothing empty. */
export function splitSentences(text: string): string[] {
  const parts = text.replace(/\s+/g, ' ').match(/[^.!?…。！？]+(?:[.!?…。！？]+["'”’)\]]*|$)/g) ?? [];
  return parts.map((s) => s.trim()).filter((s) => /[\p{L}\p{N}]/u.test(s));
}

export interface SpeechChunk {
  index: number;
  text: string;
  samples: Float32Array;
  sampleRate: number;
  last: boolean;
}

export interface StreamOptions {
  speed?: number;
  /** Called as synthesis of each sentence begins: lets tests and metrics observe streaming order. */
  onSentenceStart?: (index: number) => void;
}

/** Sentence-chunked synthesis: each chunk is yielded as soon as its sentence is done, before the next one starts. */
export async function* streamSpeech(voice: PiperVoice, text: string, opts: StreamOptions = {}): AsyncGenerator<SpeechChunk> {
  const sentences = splitSentences(text);
  for (let i = 0; i < sentences.length; i++) {
    opts.onSentenceStart?.(i);
    const samples = await voice.synthesize(sentences[i], opts.speed ?? 1);
    yield { index: i, text: sentences[i], samples, sampleRate: voice.sampleRate, last: i === sentences.length - 1 };
  }
}

export const ORB_ERR_UNKNOWN_VOICE = createError('ORB_ERR_UNKNOWN_VOICE', 'Unknown voice: %s', 400);

/** Lazily loaded voices of one model directory (one ONNX session per voice per process). */
export class VoiceLibrary {
  private readonly loaded = new Map<string, Promise<PiperVoice>>();

  constructor(
    readonly dir: string,
    private readonly opts: VoiceLoadOptions = {},
    private readonly defaultVoice = '',
  ) {}

  list(): VoiceInfo[] {
    return listVoices(this.dir);
  }

  /** The default voice: the configured one when present, else the first listed. */
  defaultInfo(voices = this.list()): VoiceInfo {
    if (!voices.length) throw new Error(`no voices in ${this.dir}`);
    return voices.find((v) => v.name === this.defaultVoice) ?? voices[0];
  }

  /**
   * The named voice; no name or one of OpenAI's built-in names (`alloy`, …) gets the default voice so OpenAI
   * clients work unchanged. Any other unknown name is the caller's mistake: ORB_ERR_UNKNOWN_VOICE (400) names it.
   */
  resolve(name: string | undefined): VoiceInfo {
    const voices = this.list();
    const found = voices.find((v) => v.name === name);
    if (found) return found;
    if (name === undefined || name === '' || OPENAI_VOICES.includes(name)) return this.defaultInfo(voices);
    throw new ORB_ERR_UNKNOWN_VOICE(
      `'${name}' (served: ${voices.map((v) => v.name).join(', ')}; OpenAI names speak with the default voice)`,
    );
  }

  async voice(name: string | undefined): Promise<PiperVoice> {
    const info = this.resolve(name);
    let p = this.loaded.get(info.name);
    if (!p) {
      p = PiperVoice.load(info, this.opts);
      this.loaded.set(info.name, p);
      p.catch(() => this.loaded.delete(info.name));
    }
    return p;
  }

  async dispose(): Promise<void> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all(all.map(async (p) => (await p).dispose()));
  }
}
