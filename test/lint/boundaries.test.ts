/**
 * The import-boundary lint (eslint.config.mjs, tools/lint/import-boundaries.mjs): every forbidden
 * arrow has a fixture under test/lint/fixtures/<arrow>/, laid out as the repo path it pretends to
 * be. Each line marked `// refused` must be reported by the boundary rule and nothing else may be;
 * the `allowed` fixtures must lint clean. The real tree must lint clean too.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(__dirname, 'fixtures');
const RULE = 'boundaries/no-cross-layer';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** [arrow, path the fixture pretends to have, its text] */
const cases = readdirSync(FIXTURES).flatMap((arrow) =>
  filesUnder(join(FIXTURES, arrow)).map((f) => [arrow, relative(join(FIXTURES, arrow), f), readFileSync(f, 'utf8')] as const),
);

interface Message {
  ruleId: string | null;
  line: number;
  severity: number;
  message: string;
}
interface Result {
  filePath: string;
  messages: Message[];
}

/**
 * ESLint's Node API in a child node: it loads eslint.config.mjs with a dynamic import(), which
 * jest's module system refuses without --experimental-vm-modules. `texts` are linted as if they
 * sat at their repo paths; `tree` lints the repository as `npm run lint` does.
 */
function eslintApi(job: { texts?: { repoPath: string; text: string }[]; tree?: boolean }): Result[] {
  const script = `
    import { ESLint } from 'eslint';
    import { join } from 'node:path';
    const job = JSON.parse(process.argv[1]);
    const eslint = new ESLint({ cwd: process.cwd() });
    const out = [];
    for (const t of job.texts ?? []) out.push(...(await eslint.lintText(t.text, { filePath: join(process.cwd(), t.repoPath) })));
    if (job.tree) out.push(...(await eslint.lintFiles(['.'])));
    process.stdout.write(JSON.stringify(out.map((r) => ({ filePath: r.filePath, messages: r.messages }))));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(job)], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 280_000,
  });
  if (r.status !== 0) throw new Error(`eslint failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Result[];
}

let fixtureResults: Result[];
beforeAll(() => {
  fixtureResults = eslintApi({ texts: cases.map(([, repoPath, text]) => ({ repoPath, text })) });
  expect(fixtureResults).toHaveLength(cases.length);
}, 120_000);

function lintAs(repoPath: string, text: string): Message[] {
  const i = cases.findIndex(([, p, t]) => p === repoPath && t === text);
  return i >= 0 ? fixtureResults[i].messages : eslintApi({ texts: [{ repoPath, text }] })[0].messages;
}

test('every forbidden arrow has a fixture, and the allowed imports one too', () => {
  const arrows = new Set(cases.map(([arrow]) => arrow));
  for (const a of [
    'orb-to-workers',
    'inference-to-workers',
    'web-to-cli',
    'client-to-cli',
    'infra-to-policy',
    'charts-to-policy',
    'services-to-infra',
    'outside-to-test',
    'allowed',
  ]) {
    expect(arrows).toContain(a);
  }
});

describe.each(cases)('%s: %s', (arrow, repoPath, text) => {
  const marked = text.split('\n').flatMap((line, i) => (line.includes('// refused') ? [i + 1] : []));

  test(arrow === 'allowed' ? 'lints clean' : 'is refused by the boundary rule on each marked line, and only there', () => {
    if (arrow === 'allowed') expect(marked).toEqual([]);
    else expect(marked.length).toBeGreaterThan(0);
    const messages = lintAs(repoPath, text);
    expect(messages.map((m) => m.ruleId)).toEqual(marked.map(() => RULE));
    expect(messages.map((m) => m.line)).toEqual(marked);
    for (const m of messages) expect(m.severity).toBe(2);
  });
});

test('the same import is refused or allowed by where the importing file sits', () => {
  const text = "import { hasTool } from '../test/support/system-tools';\nexport const t = hasTool;\n";
  const [fromScripts, fromTest] = eslintApi({
    texts: [
      { repoPath: 'scripts/x.ts', text },
      { repoPath: 'test/lint/x.ts', text },
    ],
  });
  expect(fromScripts.messages.map((m) => m.ruleId)).toEqual([RULE]);
  // From test/lint/ the same specifier lands in test/ (test/test/support…), still inside test/: allowed.
  expect(fromTest.messages).toEqual([]);
}, 120_000);

test('the real tree lints clean (npm run lint)', () => {
  const results = eslintApi({ tree: true });
  const problems = results.flatMap((r) => r.messages.map((m) => `${relative(ROOT, r.filePath)}:${m.line} ${m.ruleId}: ${m.message}`));
  expect(problems).toEqual([]);
  // It did lint the tree (the fixtures are ignored there, the layers are not).
  const linted = results.map((r) => relative(ROOT, r.filePath));
  expect(linted).toEqual(
    expect.arrayContaining(['services/orb/app.ts', 'web/src/main.ts', 'infra/policy-exemptions.ts', 'scripts/dev.ts']),
  );
  expect(linted.some((f) => f.startsWith('test/lint/fixtures/'))).toBe(false);
}, 300_000);
