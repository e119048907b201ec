/** What a benchmark reports: ratios against a baseline measured in the same run, with absolutes. */
import { ratio } from './stats';

export type Better = 'lower' | 'higher';

export interface Figure {
  /** What is compared, e.g. `GET /readyz p99`. */
  readonly metric: string;
  readonly unit: string;
  readonly subjectLabel: string;
  readonly subject: number;
  readonly baselineLabel: string;
  readonly baseline: number;
  /** subject / baseline; null when the baseline was zero. */
  readonly ratio: number | null;
  /** Which direction of the subject figure is good (ms: lower, req/s: higher). */
  readonly better: Better;
  /** Set when a side hit a search bound, so the ratio is a bound, not a point (e.g. `>=`). */
  readonly bound?: string;
}

export interface BenchResult {
  readonly name: string;
  readonly title: string;
  readonly status: 'ok' | 'not available';
  /** Why the benchmark could not run (only when status is `not available`). */
  readonly reason?: string;
  readonly figures: Figure[];
  /** Extra absolute numbers for context (per-stage times, probe lists, settings). */
  readonly details?: Record<string, unknown>;
  /** Caveats a reader must see next to the numbers (e.g. "harness check, not a model figure"). */
  readonly label?: string;
  readonly ranAt: string;
  readonly seconds: number;
  /** Ran in quick mode (fewer, shorter rounds): rougher numbers. */
  readonly quick?: boolean;
}

export function figure(f: Omit<Figure, 'ratio'>): Figure {
  return { ...f, ratio: ratio(f.subject, f.baseline) ?? null };
}

/** A benchmark whose subject is missing: says why, never a number. */
export class NotAvailable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'NotAvailable';
  }
}

export interface BenchContext {
  /** Short rounds for development on a shared machine; full runs keep the 10-minute budget. */
  readonly quick: boolean;
  /** Repository root. */
  readonly root: string;
  readonly log: (msg: string) => void;
}

export interface Benchmark {
  readonly name: string;
  readonly title: string;
  readonly label?: string;
  run(ctx: BenchContext): Promise<{ figures: Figure[]; details?: Record<string, unknown> }>;
}
