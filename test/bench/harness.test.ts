/** The bench harness on synthetic input: percentiles, ratios, interleaving, bounded search, table. Nothing timed. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { largestPassing, largestPassingGrowing, percentile, ratio, summarize } from '../../bench/harness/stats';
import { interleave, interleaveOrder } from '../../bench/harness/interleave';
import { figure } from '../../bench/harness/result';
import { table, writeResults, machineInfo } from '../../bench/harness/report';
import { stagesOf, traceStages } from '../../bench/turn';
import { parseTraceLine } from '../../services/acp/trace';

describe('percentile (nearest rank)', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted on purpose

  it('returns observed values at the nearest rank', () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile(oneToHundred, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 51)).toBe(3);
  });

  it('rejects empty input and p outside [0, 100]', () => {
    expect(() => percentile([], 50)).toThrow('empty');
    expect(() => percentile([1], 101)).toThrow('within [0, 100]');
  });

  it('summarize agrees with percentile and does not reorder its input', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    const s = summarize(xs);
    expect(s).toEqual({ n: 10, mean: 5.5, min: 1, p50: 5, p90: 9, p99: 10, max: 10 });
    expect(xs[0]).toBe(5);
  });
});

describe('ratio', () => {
  it('is subject over baseline, undefined for a zero or non-finite side', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(NaN, 1)).toBeUndefined();
    expect(figure({ metric: 'm', unit: 'ms', better: 'lower', subjectLabel: 's', subject: 6, baselineLabel: 'b', baseline: 4 }).ratio).toBe(
      1.5,
    );
    expect(
      figure({ metric: 'm', unit: 'ms', better: 'lower', subjectLabel: 's', subject: 6, baselineLabel: 'b', baseline: 0 }).ratio,
    ).toBeNull();
  });
});

describe('interleave', () => {
  it('alternates arm order every round (ABBA) and keeps each arm’s samples apart', async () => {
    const visited: string[] = [];
    const out = await interleave(3, [
      {
        name: 'base',
        round: async (i) => {
          visited.push('base');
          return i;
        },
      },
      {
        name: 'subj',
        round: async (i) => {
          visited.push('subj');
          return 10 + i;
        },
      },
    ]);
    expect(visited).toEqual(['base', 'subj', 'subj', 'base', 'base', 'subj']);
    expect(visited).toEqual(interleaveOrder(3, ['base', 'subj']));
    expect(out).toEqual({ base: [0, 1, 2], subj: [10, 11, 12] });
  });

  it('refuses zero rounds', async () => {
    await expect(interleave(0, [])).rejects.toThrow("'rounds' (0) must be at least 1");
  });
});

describe('largestPassing (bounded search)', () => {
  it('finds the threshold of a monotone predicate within the probe bound', async () => {
    const r = await largestPassing(1, 256, async (n) => n <= 37);
    expect(r.n).toBe(37);
    expect(r.probes.length).toBeLessThanOrEqual(12);
  });
  it('reports the upper bound when everything passes, lo - 1 when nothing does', async () => {
    expect((await largestPassing(1, 64, async () => true)).n).toBe(64);
    expect((await largestPassing(4, 64, async () => false)).n).toBe(3);
  });
});

describe('largestPassingGrowing (doubling, then bisection)', () => {
  it('finds the threshold and probes at most one value above twice the threshold', async () => {
    const r = await largestPassingGrowing(1, 256, async (n) => n <= 37);
    expect(r.n).toBe(37);
    expect(Math.max(...r.probes.map((p) => p.n))).toBe(64);
    expect(r.probes.slice(0, 7).map((p) => p.n)).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });
  it('stops at hi when everything passes and at lo - 1 when nothing does', async () => {
    expect((await largestPassingGrowing(1, 100, async () => true)).n).toBe(100);
    expect((await largestPassingGrowing(2, 100, async () => false)).n).toBe(1);
  });
});

describe('report', () => {
  const f = figure({
    metric: 'GET /readyz p99',
    unit: 'ms',
    better: 'lower',
    subjectLabel: 'orb',
    subject: 2.5,
    baselineLabel: 'hello',
    baseline: 1.25,
  });

  it('prints every figure with both absolutes and the ratio, and a reason for a missing subject', () => {
    const t = table([
      { name: 'gateway', title: 't', status: 'ok', figures: [f], ranAt: 'x', seconds: 1 },
      { name: 'vad', title: 't', status: 'not available', reason: 'no model', figures: [], ranAt: 'x', seconds: 0 },
    ]);
    expect(t).toContain('orb: 2.50');
    expect(t).toContain('hello: 1.25');
    expect(t).toContain('2.00x');
    expect(t).toContain('not available: no model');
  });

  it('merges a partial run into the previous file, replacing only the benchmarks that ran', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(dir, 'latest.json');
      const machine = machineInfo();
      writeResults(
        path,
        {
          machine,
          quick: false,
          results: [
            { name: 'synth', title: 's', status: 'ok', figures: [f], ranAt: 'old', seconds: 1 },
            { name: 'gateway', title: 'g', status: 'ok', figures: [f], ranAt: 'old', seconds: 1 },
          ],
        },
        ['synth', 'gateway'],
      );
      writeResults(
        path,
        { machine, quick: false, results: [{ name: 'gateway', title: 'g', status: 'ok', figures: [f], ranAt: 'new', seconds: 1 }] },
        ['synth', 'gateway'],
      );
      const saved = JSON.parse(readFileSync(path, 'utf8'));
      expect(saved.results.map((r: { name: string; ranAt: string }) => `${r.name}:${r.ranAt}`)).toEqual(['synth:old', 'gateway:new']);
      expect(saved.machine.cores).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('turn stage split', () => {
  it('splits a turn at its milestones, taking the last verdict before the reply', () => {
    const ev = (seq: number, type: string, ts: number) => ({ seq, type, ts });
    const stages = stagesOf(1000, 1100, [
      ev(1, 'turn.start', 1010),
      ev(2, 'transcript', 1030),
      ev(3, 'verdict', 1040),
      ev(4, 'verdict', 1055),
      ev(6, 'reply', 1070),
      ev(5, 'verdict', 1060),
      ev(7, 'verdict', 1080),
      ev(8, 'audio', 1085),
      ev(9, 'turn.end', 1090),
    ]);
    expect(stages).toEqual({
      'sent -> turn.start': 10,
      'turn.start -> transcript': 20,
      'transcript -> verdicts': 30,
      'verdicts -> reply': 10,
      'reply -> first audio': 15,
      'first audio -> turn.end': 5,
      'turn.end -> received': 10,
      total: 100,
    });
  });

  it('skips milestones a text turn does not have', () => {
    const stages = stagesOf(0, 50, [
      { seq: 1, type: 'turn.start', ts: 5 },
      { seq: 2, type: 'reply', ts: 30 },
      { seq: 3, type: 'turn.end', ts: 40 },
    ]);
    expect(Object.keys(stages)).toEqual([
      'sent -> turn.start',
      'turn.start -> reply',
      'reply -> turn.end',
      'turn.end -> received',
      'total',
    ]);
  });
});

describe('turn trace (ORB_TRACE marks)', () => {
  it('reads a mark out of a process line and ignores every other line', () => {
    expect(parseTraceLine('core-3 | ORB_TRACE {"turn":"t1","stage":"core:3.pickup","t":1000.25}')).toEqual({
      turn: 't1',
      stage: 'core:3.pickup',
      t: 1000.25,
    });
    expect(parseTraceLine('{"level":40,"msg":"ORB_TRACE is not JSON here"}')).toBeUndefined();
    expect(parseTraceLine('ORB_TRACE {"turn":"t1","stage":"x"}')).toBeUndefined();
    expect(parseTraceLine('plain log line')).toBeUndefined();
  });

  it('follows the core whose verdict came last, and leaves out a turn with a missing mark', () => {
    const m = (stage: string, t: number) => ({ turn: 't1', stage, t });
    const marks = [
      m('gw.accept', 2),
      m('gw.fcall', 3),
      m('gw.started', 8),
      m('core:0.pickup', 4),
      m('core:0.admitted', 5),
      m('core:0.classified', 6),
      m('core:0.emitted.verdict', 7),
      m('core:1.pickup', 6),
      m('core:1.admitted', 7),
      m('core:1.classified', 9),
      m('core:1.emitted.verdict', 12),
      m('cali.pickup', 5),
      m('cali.voted', 13),
      m('cali.composed', 14),
      m('cali.emitted.reply', 15),
      m('cali.emitted.turn.end', 16),
      m('gw.end_seen', 17),
      m('gw.collected', 17.5),
    ];
    const s = traceStages(0, 20, marks)!;
    expect(s['turn.start FCALL answered -> last core pickup']).toBe(-2);
    expect(s['last core classified -> last verdict published']).toBe(3);
    expect(s['(off path) FCALL sent -> first core pickup']).toBe(1);
    expect(s['(off path) FCALL sent -> CALI pickup']).toBe(2);
    expect(s.total).toBe(20);
    expect(
      traceStages(
        0,
        20,
        marks.filter((x) => x.stage !== 'cali.voted'),
      ),
    ).toBeUndefined();
  });
});
