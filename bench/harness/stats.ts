/** Exact statistics over the bounded sample sets a benchmark collects (no approximation needed). */

export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * Nearest-rank percentile: the smallest sample such that at least p% of samples are <= it.
 * Nearest-rank always returns an observed value, so a p99 is a latency some request really had.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) throw new Error('percentile of an empty sample set');
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile p must be within [0, 100], got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  if (p === 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1];
}

export function summarize(samples: readonly number[]): Summary {
  if (!samples.length) throw new Error('summary of an empty sample set');
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
  return {
    n: sorted.length,
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length,
    min: sorted[0],
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1],
  };
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** subject / baseline; undefined when the baseline is zero or either side is not a finite number. */
export function ratio(subject: number, baseline: number): number | undefined {
  if (!Number.isFinite(subject) || !Number.isFinite(baseline) || baseline === 0) return undefined;
  return subject / baseline;
}

/**
 * Largest n in [lo, hi] for which `ok(n)` holds, assuming monotonicity (ok for small n, then not).
 * Bounded: at most ~log2(hi - lo) + 2 probes. Returns lo - 1 when even `lo` fails.
 */
export async function largestPassing(
  lo: number,
  hi: number,
  ok: (n: number) => Promise<boolean>,
  maxProbes = 12,
): Promise<{ n: number; probes: Array<{ n: number; ok: boolean }> }> {
  const probes: Array<{ n: number; ok: boolean }> = [];
  const probe = async (n: number) => {
    const r = await ok(n);
    probes.push({ n, ok: r });
    return r;
  };
  if (!(await probe(lo))) return { n: lo - 1, probes };
  if (await probe(hi)) return { n: hi, probes };
  let good = lo;
  let bad = hi;
  while (bad - good > 1 && probes.length < maxProbes) {
    const mid = Math.floor((good + bad) / 2);
    if (await probe(mid)) good = mid;
    else bad = mid;
  }
  return { n: good, probes };
}

/**
 * Like `largestPassing`, but grows from `lo` by doubling until the first failure, then bisects:
 * when failing probes are the expensive ones (an overloaded server), only one of them is paid
 * for per doubling step instead of starting at the far end.
 */
export async function largestPassingGrowing(
  lo: number,
  hi: number,
  ok: (n: number) => Promise<boolean>,
  maxProbes = 12,
): Promise<{ n: number; probes: Array<{ n: number; ok: boolean }> }> {
  const probes: Array<{ n: number; ok: boolean }> = [];
  const probe = async (n: number) => {
    const r = await ok(n);
    probes.push({ n, ok: r });
    return r;
  };
  if (!(await probe(lo))) return { n: lo - 1, probes };
  let good = lo;
  let bad: number | undefined;
  while (bad === undefined && good < hi && probes.length < maxProbes) {
    const next = Math.min(hi, good * 2);
    if (await probe(next)) good = next;
    else bad = next;
  }
  while (bad !== undefined && bad - good > 1 && probes.length < maxProbes) {
    const mid = Math.floor((good + bad) / 2);
    if (await probe(mid)) good = mid;
    else bad = mid;
  }
  return { n: good, probes };
}
