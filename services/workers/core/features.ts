/**
 * Hashed n-gram features of an utterance — the one implementation shared by the training
 * script and the cores, driven by the `features` spec in each model's config.json so a model
 * and its featurizer can never drift apart.
 */

export interface HashedNgramSpec {
  readonly type: 'hashed-ngrams';
  /** Feature vector length (the ONNX input's second dimension). */
  readonly dim: number;
  readonly hash: 'fnv1a32';
  readonly lowercase: boolean;
  /** Word n-gram orders, e.g. [1, 2]. */
  readonly word_ngrams: readonly number[];
  /** Character n-gram orders inside `#word#`, e.g. [3]. */
  readonly char_ngrams: readonly number[];
  readonly normalize: 'l2' | 'none';
}

export const DEFAULT_FEATURES: HashedNgramSpec = {
  type: 'hashed-ngrams',
  dim: 2048,
  hash: 'fnv1a32',
  lowercase: true,
  word_ngrams: [1, 2],
  char_ngrams: [3],
  normalize: 'l2',
};

/** 32-bit FNV-1a over UTF-8 bytes. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function tokenize(text: string, spec: HashedNgramSpec): string[] {
  const t = spec.lowercase ? text.toLowerCase() : text;
  return t.match(/[\p{L}\p{N}']+/gu) ?? [];
}

/** Sparse features: index → value (before normalisation, counts). */
export function sparseFeatures(text: string, spec: HashedNgramSpec): Map<number, number> {
  const toks = tokenize(text, spec);
  const out = new Map<number, number>();
  const add = (f: string) => {
    const i = fnv1a32(f) % spec.dim;
    out.set(i, (out.get(i) ?? 0) + 1);
  };
  for (const n of spec.word_ngrams) {
    for (let i = 0; i + n <= toks.length; i++) add(`w${n}:${toks.slice(i, i + n).join(' ')}`);
  }
  for (const n of spec.char_ngrams) {
    for (const tok of toks) {
      const w = `#${tok}#`;
      for (let i = 0; i + n <= w.length; i++) add(`c${n}:${w.slice(i, i + n)}`);
    }
  }
  if (spec.normalize === 'l2' && out.size) {
    let norm = 0;
    for (const v of out.values()) norm += v * v;
    norm = Math.sqrt(norm);
    for (const [k, v] of out) out.set(k, v / norm);
  }
  return out;
}

/** Writes the features of `text` into row `row` of a zeroed [rows, dim] buffer. */
export function writeFeatures(text: string, spec: HashedNgramSpec, into: Float32Array, row: number): void {
  const base = row * spec.dim;
  for (const [i, v] of sparseFeatures(text, spec)) into[base + i] = v;
}
