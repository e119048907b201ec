/**
 * `npm run bench [name…] [--quick]`: runs the named benchmarks (default: all), prints a table of
 * ratios against baselines measured side by side, and writes bench/results/latest.json.
 */
import { join, resolve } from 'node:path';
import { BENCHMARKS } from './registry';
import { NotAvailable, type BenchResult } from './harness/result';
import { machineInfo, table, writeResults } from './harness/report';
import { performanceDoc, readmeWithLatest } from './docs';
import { readFileSync, writeFileSync } from 'node:fs';

/** The first two non-empty lines of an error, bounded: enough for a table cell. */
function brief(msg: string): string {
  return msg
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 2)
    .join(' / ')
    .slice(0, 240);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick') || process.env.BENCH_QUICK === '1';
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    return 2;
  }
  const chosen = names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS;
  const root = resolve(__dirname, '..');
  const log = (msg: string) => process.stderr.write(`  ${msg}\n`);
  const results: BenchResult[] = [];
  let failed = 0;
  const t0 = Date.now();
  const machine = machineInfo(); // at the start: the load average before our own load
  for (const b of chosen) {
    process.stderr.write(`[bench] ${b.name}: ${b.title}${quick ? ' (quick)' : ''}\n`);
    const started = Date.now();
    const ranAt = new Date().toISOString();
    try {
      const { figures, details } = await b.run({ quick, root, log });
      results.push({
        name: b.name,
        title: b.title,
        label: b.label,
        status: 'ok',
        figures,
        details,
        ranAt,
        seconds: (Date.now() - started) / 1000,
        quick,
      });
    } catch (err) {
      const missing = err instanceof NotAvailable;
      if (!missing) failed++;
      const reason = missing ? (err as Error).message : `failed: ${(err as Error).stack ?? String(err)}`;
      process.stderr.write(`[bench] ${b.name}: not available: ${reason}\n`);
      results.push({
        name: b.name,
        title: b.title,
        label: b.label,
        status: 'not available',
        reason: missing ? reason : `failed: ${brief((err as Error).message)}`,
        figures: [],
        ranAt,
        seconds: (Date.now() - started) / 1000,
        quick,
      });
    }
    process.stderr.write(`[bench] ${b.name}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  machine.date = new Date().toISOString();
  const out = argv.find((a) => a.startsWith('--out='))?.slice(6) ?? join(root, 'bench', 'results', 'latest.json');
  const written = writeResults(
    out,
    { machine, quick, results },
    BENCHMARKS.map((b) => b.name),
  );
  if (argv.includes('--docs')) {
    // Both files are kept in the repo's Prettier format (CI checks it), so write them formatted.
    const prettier = await import('prettier');
    const write = async (file: string, text: string) => {
      const options = (await prettier.resolveConfig(file)) ?? {};
      writeFileSync(file, await prettier.format(text, { ...options, filepath: file }));
      console.log(`docs: ${file}`);
    };
    await write(join(root, 'docs', 'performance.md'), performanceDoc(written));
    const readme = join(root, 'README.md');
    await write(readme, readmeWithLatest(readFileSync(readme, 'utf8'), written));
  }
  console.log(
    `\n${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.date}, load ${machine.load1} at start${quick ? ', QUICK mode' : ''}`,
  );
  console.log(`this run: ${chosen.map((b) => b.name).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  console.log(table(results));
  console.log(`\nwritten to ${out}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
