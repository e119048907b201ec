/** The table printed after a run and the JSON written to bench/results/latest.json. */
import { cpus, totalmem, platform, release, loadavg } from 'node:os';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchResult, Figure } from './result';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  date: string;
  /** 1-minute load average when the run started: context for how shared the machine was. */
  load1?: number;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpuModel: c[0]?.model?.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${platform()} ${release()}`,
    date: new Date().toISOString(),
    load1: Math.round(loadavg()[0] * 100) / 100,
  };
}

/** Numbers with enough digits to read, none that pretend precision. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(2);
}

export function fmtRatio(f: Figure): string {
  if (f.ratio === null) return 'n/a';
  return `${f.bound ?? ''}${f.ratio.toFixed(2)}x`;
}

/** Rows: benchmark | metric | subject | baseline | ratio. Markdown, so docs/performance.md can hold it as is. */
export function table(results: readonly BenchResult[]): string {
  const rows: string[][] = [['benchmark', 'metric', 'subject', 'baseline', 'ratio (subject/baseline)']];
  for (const r of results) {
    const name = `${r.name}${r.quick ? ' [quick]' : ''}${r.label ? ` (${r.label})` : ''}`;
    if (r.status !== 'ok') {
      rows.push([name, `not available: ${r.reason ?? 'unknown'}`, '', '', '']);
      continue;
    }
    for (const f of r.figures) {
      rows.push([
        name,
        `${f.metric} (${f.unit}, ${f.better} is better)`,
        Number.isFinite(f.subject) ? `${f.subjectLabel}: ${fmt(f.subject)}` : `${f.subjectLabel}: not available`,
        `${f.baselineLabel}: ${fmt(f.baseline)}`,
        fmtRatio(f),
      ]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

export interface ResultsFile {
  machine: MachineInfo;
  quick: boolean;
  results: BenchResult[];
}

/**
 * Writes the run, keeping earlier results of benchmarks not run this time (each carries its
 * own `ranAt`), so `npm run bench gateway` refreshes one row without dropping the others.
 */
export function writeResults(path: string, run: ResultsFile, order: readonly string[] = []): ResultsFile {
  let merged = run.results;
  if (existsSync(path)) {
    try {
      const prev = JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
      const fresh = new Set(run.results.map((r) => r.name));
      merged = [...prev.results.filter((r) => !fresh.has(r.name)), ...run.results];
    } catch {
      // An unreadable previous file is replaced, not merged.
    }
  }
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  merged = [...merged].sort((a, b) => rank(a.name) - rank(b.name));
  const out = { ...run, results: merged };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  return out;
}
