import { MixedRadixFft } from './fft';

/**
 * Whisper's log-mel spectrogram (the feature extractor of openai/whisper and transformers' WhisperFeatureExtractor):
 * 16 kHz audio padded/trimmed to 30 s, periodic Hann window n_fft 400, hop 160, centered with reflect padding,
 * power spectrum, Slaney-normalised mel filterbank (librosa's default), log10 clamped to max-8, then (x+4)/4.
 */
export interface LogMelOptions {
  nMels: number;
  nFft: number;
  hop: number;
  sampleRate: number;
  /** Samples per 30 s window. */
  nSamples: number;
  /** Frames per window (3000). */
  nFrames: number;
}

export const WHISPER_LOG_MEL: LogMelOptions = { nMels: 80, nFft: 400, hop: 160, sampleRate: 16000, nSamples: 480000, nFrames: 3000 };

function hzToMel(f: number): number {
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27;
  return f < minLogHz ? f / fSp : minLogMel + Math.log(f / minLogHz) / logstep;
}

function melToHz(m: number): number {
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logstep = Math.log(6.4) / 27;
  return m < minLogMel ? m * fSp : minLogHz * Math.exp(logstep * (m - minLogMel));
}

/** librosa.filters.mel(sr, n_fft, n_mels) with htk=False, norm='slaney': [nMels][nFft/2+1]. */
export function melFilterBank(sampleRate: number, nFft: number, nMels: number): Float32Array[] {
  const nBins = nFft / 2 + 1;
  const fftFreqs = Array.from({ length: nBins }, (_, i) => (i * sampleRate) / nFft);
  const minMel = hzToMel(0);
  const maxMel = hzToMel(sampleRate / 2);
  const melF = Array.from({ length: nMels + 2 }, (_, i) => melToHz(minMel + ((maxMel - minMel) * i) / (nMels + 1)));
  const bank: Float32Array[] = [];
  for (let m = 0; m < nMels; m++) {
    const row = new Float32Array(nBins);
    const enorm = 2 / (melF[m + 2] - melF[m]);
    for (let k = 0; k < nBins; k++) {
      const lower = (fftFreqs[k] - melF[m]) / (melF[m + 1] - melF[m]);
      const upper = (melF[m + 2] - fftFreqs[k]) / (melF[m + 2] - melF[m + 1]);
      row[k] = Math.max(0, Math.min(lower, upper)) * enorm;
    }
    bank.push(row);
  }
  return bank;
}

/** Precomputed tables for one configuration; reuse across calls (the hot path allocates only its output). */
export class LogMel {
  private readonly window: Float32Array;
  private readonly fft: MixedRadixFft;
  private readonly bank: Float32Array[];
  /** Non-zero span [lo, hi) of each triangle: the bank is ~95% zeros. */
  private readonly spans: Array<[number, number]>;
  private readonly nBins: number;
  private readonly frame: Float32Array;
  private readonly power: Float32Array;

  constructor(readonly opts: LogMelOptions = WHISPER_LOG_MEL) {
    const { nFft } = opts;
    this.nBins = nFft / 2 + 1;
    this.window = Float32Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft));
    this.fft = new MixedRadixFft(nFft);
    this.bank = melFilterBank(opts.sampleRate, nFft, opts.nMels);
    this.spans = this.bank.map((row) => {
      const lo = row.findIndex((v) => v > 0);
      let hi = row.length;
      while (hi > 0 && row[hi - 1] === 0) hi--;
      return lo < 0 ? [0, 0] : [lo, hi];
    });
    this.frame = new Float32Array(nFft);
    this.power = new Float32Array(this.nBins);
  }

  /** Features [nMels * nFrames] (row-major, mel-major) of one ≤30 s chunk, written into `out` when given. */
  compute(audio: Float32Array, out?: Float32Array): Float32Array {
    const { nFft, hop, nMels, nFrames, nSamples } = this.opts;
    const len = Math.min(audio.length, nSamples);
    const half = nFft / 2;
    const feats = out ?? new Float32Array(nMels * nFrames);
    const sample = (i: number): number => {
      // Reflect padding of the 30 s padded signal (zeros past `len`).
      if (i < 0) i = -i;
      if (i >= nSamples) i = 2 * (nSamples - 1) - i;
      return i < len ? audio[i] : 0;
    };
    const silentFrom = Math.min(nFrames, Math.ceil((len + half) / hop) + 1);
    let max = -Infinity;
    for (let t = 0; t < nFrames; t++) {
      if (t >= silentFrom) {
        for (let m = 0; m < nMels; m++) feats[m * nFrames + t] = -10; // log10(1e-10): all-zero frames
        continue;
      }
      const start = t * hop - half;
      for (let n = 0; n < nFft; n++) this.frame[n] = sample(start + n) * this.window[n];
      this.fft.realForward(this.frame);
      const { re, im } = this.fft;
      for (let k = 0; k < this.nBins; k++) this.power[k] = re[k] * re[k] + im[k] * im[k];
      for (let m = 0; m < nMels; m++) {
        const row = this.bank[m];
        const [lo, hi] = this.spans[m];
        let s = 0;
        for (let k = lo; k < hi; k++) s += row[k] * this.power[k];
        const v = Math.log10(Math.max(s, 1e-10));
        feats[m * nFrames + t] = v;
        if (v > max) max = v;
      }
    }
    if (max === -Infinity) max = -10;
    const floor = max - 8;
    for (let i = 0; i < feats.length; i++) feats[i] = (Math.max(feats[i], floor) + 4) / 4;
    return feats;
  }
}
