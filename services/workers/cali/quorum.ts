/**
 * The verdict vote: confidence-weighted majority over the cores that answered, ties broken by
 * the fifth core (the "+1"). Pure, so the training script scores the ensemble with the very
 * rule CALI applies.
 */

export interface CoreVerdict {
  readonly label: string;
  readonly confidence: number;
  readonly core: number;
}

export interface VoteOutcome {
  readonly label: string;
  /** Winner's share of the total confidence weight, 0..1. */
  readonly confidence: number;
  /** Fraction of the answering cores whose label is the winner (the consensus ratio). */
  readonly consensus: number;
  readonly received: number;
  /** Summed confidence per label. */
  readonly weights: Readonly<Record<string, number>>;
  /** True when the top weight was shared and a tie rule decided. */
  readonly tie: boolean;
  /** How the tie was decided: `tiebreak-core` (the +1 voted for a tied label) or `fallback`. */
  readonly decidedBy: 'weight' | 'tiebreak-core' | 'fallback';
}

const EPS = 1e-6;

export function aggregateVerdicts(verdicts: readonly CoreVerdict[], opts: { tieBreakCore?: number } = {}): VoteOutcome {
  if (!verdicts.length) throw new Error('aggregateVerdicts: no verdicts');
  const tieBreakCore = opts.tieBreakCore ?? 4;
  // One vote per core: a redelivered core job can never vote twice.
  const byCore = new Map<number, CoreVerdict>();
  for (const v of verdicts) if (!byCore.has(v.core)) byCore.set(v.core, v);
  const votes = [...byCore.values()];
  const weights: Record<string, number> = {};
  let total = 0;
  for (const v of votes) {
    const w = Math.max(0, Number.isFinite(v.confidence) ? v.confidence : 0);
    weights[v.label] = (weights[v.label] ?? 0) + w;
    total += w;
  }
  const max = Math.max(...Object.values(weights));
  const tied = Object.keys(weights)
    .filter((l) => max - weights[l] <= EPS)
    .sort();
  let label = tied[0];
  let decidedBy: VoteOutcome['decidedBy'] = 'weight';
  if (tied.length > 1) {
    const plusOne = byCore.get(tieBreakCore);
    if (plusOne && tied.includes(plusOne.label)) {
      label = plusOne.label;
      decidedBy = 'tiebreak-core';
    } else {
      // Without the +1: the tied label holding the single most confident vote, then by name.
      const best = (l: string) => Math.max(...votes.filter((v) => v.label === l).map((v) => v.confidence));
      label = [...tied].sort((a, b) => best(b) - best(a) || a.localeCompare(b))[0];
      decidedBy = 'fallback';
    }
  }
  const agree = votes.filter((v) => v.label === label).length;
  return {
    label,
    confidence: total > 0 ? weights[label] / total : 0,
    consensus: agree / votes.length,
    received: votes.length,
    weights,
    tie: tied.length > 1,
    decidedBy,
  };
}
