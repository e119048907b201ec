/** Renders a PolicyReport as the rule × object table `npm run policy` prints. */
import type { PolicyReport } from './engine';
import { RULES } from './rules';
import type { RuleId } from './types';

export interface Totals {
  readonly pass: number;
  readonly fail: number;
  readonly exempt: number;
  readonly findings: number;
}

export function totals(report: PolicyReport): Totals {
  const count = (v: string) => report.results.filter((r) => r.verdict === v).length;
  return { pass: count('pass'), fail: count('fail'), exempt: count('exempt'), findings: report.findings.length };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export interface TableOptions {
  /** Print only the failing and exempt cells (the per-rule summary still counts all). */
  readonly onlyProblems?: boolean;
}

/**
 * Three parts: the cells (RULE OBJECT RESULT DETAIL), a per-rule summary (pass/fail/exempt),
 * and the findings that are not cells (disallowed exemptions).
 */
export function renderTable(report: PolicyReport, opts: TableOptions = {}): string {
  const lines: string[] = [`# policy: ${report.env}`, ''];
  const rows = report.results
    .filter((r) => !opts.onlyProblems || r.verdict !== 'pass')
    .map((r) => [r.rule, `${r.kind}/${r.name}`, r.verdict.toUpperCase(), r.messages.join('; ')]);
  const head = ['RULE', 'OBJECT', 'RESULT', 'DETAIL'];
  const w = [0, 1, 2].map((i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  lines.push(head.map((h, i) => (i < 3 ? pad(h, w[i]) : h)).join('  '));
  for (const r of rows)
    lines.push(
      r
        .map((c, i) => (i < 3 ? pad(c, w[i]) : c))
        .join('  ')
        .trimEnd(),
    );
  lines.push('', 'RULE  PASS  FAIL  EXEMPT  TITLE');
  for (const rule of RULES) {
    const mine = report.results.filter((r) => r.rule === rule.id);
    const n = (v: string) => String(mine.filter((r) => r.verdict === v).length);
    lines.push(`${pad(rule.id, 4)}  ${pad(n('pass'), 4)}  ${pad(n('fail'), 4)}  ${pad(n('exempt'), 6)}  ${rule.title}`);
  }
  const cellKeys = new Set(
    report.results.filter((r) => r.verdict === 'fail').flatMap((r) => r.messages.map((m) => `${r.rule}|${r.kind}|${r.name}|${m}`)),
  );
  const extra = report.findings.filter((f) => !cellKeys.has(`${f.rule}|${f.kind}|${f.name}|${f.message}`));
  if (extra.length > 0) {
    lines.push('', 'EXEMPTION FINDINGS');
    for (const f of extra) lines.push(`${f.rule}  ${f.kind}/${f.name}  ${f.message}`);
  }
  const t = totals(report);
  lines.push('', `TOTAL ${report.env}: ${t.pass} pass, ${t.fail} fail, ${t.exempt} exempt; ${t.findings} finding(s)`);
  return lines.join('\n');
}

/** Rule IDs with at least one exempt cell. */
export function exemptRuleIds(report: PolicyReport): RuleId[] {
  return [...new Set(report.exemptions.map((r) => r.rule))].sort();
}
