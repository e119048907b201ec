/**
 * The deliberate breakages of `npm run e2e:pods -- --break <case>` change exactly the one field
 * they name, in a copy, and leave every other file of the rendered tree byte for byte; the
 * committed dist/ is never touched. (The runs themselves need root and nftables: CI runs e2e:pods,
 * the closing note shows each case caught.)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BREAKAGES, breakTree } from '../../../tools/pods/breakage';
import { loadDir, ref } from '../../../tools/pods/manifests';

const repo = resolve(__dirname, '../../..');
let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'breakage-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Dotted paths where two JSON values differ. */
function diffPaths(a: unknown, b: unknown, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) => diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return [at];
}

test.each(Object.entries(BREAKAGES))('%s changes one field of one object, in a copy', (name, b) => {
  const from = join(repo, 'dist', b.tree === 'prod' ? 'prod' : 'dev');
  const to = join(scratch, name);
  const before = readdirSync(from)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => [f, readFileSync(join(from, f), 'utf8')] as const);
  const field = breakTree(from, to, b);
  expect(field).toMatch(/^[A-Z]\w+\/[\w-]+ spec\./);
  const changedFiles = before.filter(([f, text]) => readFileSync(join(to, f), 'utf8') !== text).map(([f]) => f);
  expect(changedFiles).toHaveLength(1);
  // The committed tree is untouched.
  for (const [f, text] of before) expect(readFileSync(join(from, f), 'utf8')).toBe(text);
  const a = loadDir(from);
  const z = loadDir(to);
  expect(z.map(ref)).toEqual(a.map(ref));
  const differing = a.map((o, i) => ({ o: ref(o), paths: diffPaths(o, z[i]) })).filter((d) => d.paths.length);
  expect(differing).toHaveLength(1);
  expect(field.startsWith(differing[0].o)).toBe(true);
  expect(differing[0].paths.length).toBeGreaterThan(0);
  expect(differing[0].paths.every((p) => p.startsWith('spec.'))).toBe(true);
});

test('an unknown object in a case is an error, not a silent no-op', () => {
  expect(() => BREAKAGES['probe-path'].apply([])).toThrow('Deployment/orb-core is not rendered');
});
