/**
 * Mixed-radix Cooley–Tukey FFT for any length whose factors are small (Whisper's n_fft 400 = 2^4 · 5^2):
 * ~18 complex multiply-adds per point instead of the direct DFT's 400. Power-of-two FFT packages cannot do
 * 400 points, and zero-padding to 512 would change the bins Whisper was trained on.
 */
export class MixedRadixFft {
  private readonly factors: number[] = [];
  private readonly twRe: Float64Array;
  private readonly twIm: Float64Array;
  private readonly yRe: Float64Array;
  private readonly yIm: Float64Array;
  readonly re: Float64Array;
  readonly im: Float64Array;

  constructor(readonly n: number) {
    let rest = n;
    for (const p of [4, 2, 3, 5, 7]) {
      while (rest % p === 0) {
        this.factors.push(p);
        rest /= p;
      }
    }
    if (rest > 1) this.factors.push(rest); // a large prime factor falls back to a direct DFT at that level
    this.twRe = Float64Array.from({ length: n }, (_, j) => Math.cos((-2 * Math.PI * j) / n));
    this.twIm = Float64Array.from({ length: n }, (_, j) => Math.sin((-2 * Math.PI * j) / n));
    const maxP = Math.max(...this.factors, 1);
    this.yRe = new Float64Array(maxP);
    this.yIm = new Float64Array(maxP);
    this.re = new Float64Array(n);
    this.im = new Float64Array(n);
  }

  /** Transforms a real signal of length n; the spectrum is left in `re`/`im`. */
  realForward(x: ArrayLike<number>): void {
    this.rec(x, 0, 1, this.n, 0, 0);
  }

  private rec(x: ArrayLike<number>, off: number, stride: number, n: number, fi: number, outOff: number): void {
    if (n === 1) {
      this.re[outOff] = x[off];
      this.im[outOff] = 0;
      return;
    }
    const p = this.factors[fi];
    const m = n / p;
    for (let q = 0; q < p; q++) this.rec(x, off + q * stride, stride * p, m, fi + 1, outOff + q * m);
    const step = this.n / n;
    const { re, im, yRe, yIm, twRe, twIm } = this;
    const N = this.n;
    for (let k = 0; k < m; k++) {
      for (let q = 0; q < p; q++) {
        yRe[q] = re[outOff + q * m + k];
        yIm[q] = im[outOff + q * m + k];
      }
      for (let s = 0; s < p; s++) {
        const idx = k + s * m;
        let sr = yRe[0];
        let si = yIm[0];
        for (let q = 1; q < p; q++) {
          const t = (idx * q * step) % N;
          const wr = twRe[t];
          const wi = twIm[t];
          sr += yRe[q] * wr - yIm[q] * wi;
          si += yRe[q] * wi + yIm[q] * wr;
        }
        re[outOff + idx] = sr;
        im[outOff + idx] = si;
      }
    }
  }
}
