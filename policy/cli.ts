/**
 * `npm run policy [env…] [--dist DIR] [--only-problems]`: runs the policy over dist/<env>/*.yaml,
 * prints the rule × object table with totals, and exits 1 on any finding (2 on bad usage).
 */
import * as path from 'node:path';
import { runPolicy } from './engine';
import { listEnvironments, loadEnvironment } from './load';
import { renderTable, totals } from './table';

export function main(argv: string[]): number {
  let dist = 'dist';
  let onlyProblems = false;
  const envs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dist') dist = argv[++i] ?? '';
    else if (a === '--only-problems') onlyProblems = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run policy -- [env…] [--dist DIR] [--only-problems]\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`unknown option ${a}\n`);
      return 2;
    } else envs.push(a);
  }
  const available = listEnvironments(dist);
  const chosen = envs.length > 0 ? envs : available;
  if (chosen.length === 0) {
    process.stderr.write(`no environments with YAML under ${dist}/; run 'npm run synth' first\n`);
    return 2;
  }
  let findings = 0;
  const summary: string[] = [];
  for (const env of chosen) {
    if (!available.includes(env)) {
      process.stderr.write(`no manifests in ${path.join(dist, env)} (have: ${available.join(', ') || 'none'})\n`);
      return 2;
    }
    const { objects } = loadEnvironment(path.join(dist, env));
    const report = runPolicy(objects, { env });
    process.stdout.write(`${renderTable(report, { onlyProblems })}\n\n`);
    const t = totals(report);
    findings += t.findings;
    summary.push(`${env}: ${objects.length} objects, ${t.pass} pass, ${t.fail} fail, ${t.exempt} exempt, ${t.findings} finding(s)`);
  }
  process.stdout.write(`${summary.join('\n')}\n`);
  return findings > 0 ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
