/** The README's Performance block is rewritten from a results file, between its markers only. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { README_BEGIN, README_END, readmeWithLatest } from '../../bench/docs';
import type { ResultsFile } from '../../bench/harness/report';

const file: ResultsFile = {
  machine: { cpuModel: 'Test CPU', cores: 2, memoryGiB: 4, node: 'v20', platform: 'linux', date: '2026-11-29T00:00:00.000Z', load1: 0.5 },
  quick: false,
  results: [
    {
      name: 'gateway',
      title: 't',
      label: 'l',
      status: 'ok',
      ranAt: '2026-11-29T00:00:00.000Z',
      seconds: 1,
      quick: false,
      figures: [
        {
          metric: 'throughput',
          unit: 'req/s',
          subjectLabel: 'orb-core',
          subject: 50,
          baselineLabel: 'floor',
          baseline: 100,
          ratio: 0.5,
          better: 'higher',
        },
      ],
    },
  ],
} as unknown as ResultsFile;

test('replaces exactly the marked block and keeps the rest of the README', () => {
  const readme = `# X\n\nbefore\n\n${README_BEGIN}\n\nold table\n\n${README_END}\n\nafter\n`;
  const out = readmeWithLatest(readme, file);
  expect(out.startsWith(`# X\n\nbefore\n\n${README_BEGIN}\n\nLatest run: 2026-11-29T00:00:00.000Z — Test CPU, 2 cores`)).toBe(true);
  expect(out).not.toContain('old table');
  expect(out).toContain('0.50x');
  expect(out.endsWith(`${README_END}\n\nafter\n`)).toBe(true);
});

test('a README without the markers is an error, not a silent no-op', () => {
  expect(() => readmeWithLatest('# no block\n', file)).toThrow('README.md has no');
});

test("the repository's README carries the block", () => {
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
  expect(readme.indexOf(README_BEGIN)).toBeGreaterThan(0);
  expect(readme.indexOf(README_END)).toBeGreaterThan(readme.indexOf(README_BEGIN));
});
