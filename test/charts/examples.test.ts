/**
 * Every composition example in README.md and docs/ runs: each ```ts block that builds an
 * environment or a stack (it mentions EnvironmentConfig, OrbStack or new Chart) is written to a
 * scratch folder, its imports pointed at this repo (`@ucm4/orb-constructs` is charts/index.ts, the
 * library's entry), and run with tsx in its own process. A block that declares environments
 * (`export const x: EnvironmentConfig`) has each of them synthesized as `npm run synth` would.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const DOCS = [
  'README.md',
  ...readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

interface Example {
  readonly file: string;
  readonly line: number;
  readonly code: string;
}

function examples(): Example[] {
  const out: Example[] = [];
  for (const file of DOCS) {
    const text = readFileSync(join(REPO, file), 'utf8');
    for (const m of text.matchAll(/^```ts\n([\s\S]*?)^```/gm)) {
      if (!/EnvironmentConfig|OrbStack|new Chart\(/.test(m[1])) continue;
      out.push({ file, line: text.slice(0, m.index).split('\n').length, code: m[1] });
    }
  }
  return out;
}

const abs = (mod: string) => JSON.stringify(mod.startsWith('.') ? join(REPO, mod) : require.resolve(mod, { paths: [REPO] }));

/** The block as a runnable script: imports resolved into the repo, declared environments synthesized. */
function runnable(code: string, outdir: string): string {
  const imports: string[] = [];
  let body = code
    .replace(/from '@ucm4\/orb-constructs'/g, `from ${abs('./charts/index.ts')}`)
    .replace(/from '(cdk8s|constructs)'/g, (_m, mod: string) => `from ${abs(mod)}`);
  // A block written inside charts/environments.ts uses that file's own names.
  if (/^\/\/ charts\/environments\.ts/m.test(code)) {
    imports.push(
      `import { dev, prod } from ${abs('./charts/environments.ts')};`,
      `import type { EnvironmentConfig } from ${abs('./charts/config.ts')};`,
    );
    body = body.replace(/^export const ENVIRONMENTS = .*$/m, '');
  }
  const declared = [...code.matchAll(/^export const (\w+): EnvironmentConfig/gm)].map((m) => m[1]);
  const synth = declared.length
    ? [
        `import { App as SynthApp } from ${abs('cdk8s')};`,
        `import { buildEnvironment as synthEnvironment } from ${abs('./charts/orb-stack.ts')};`,
        ...declared.map(
          (d) => `{ const app = new SynthApp({ outdir: ${JSON.stringify(join(outdir, d))} }); synthEnvironment(app, ${d}); app.synth(); }`,
        ),
      ]
    : [];
  return [...imports, body, ...synth].join('\n');
}

const found = examples();

test('the README holds the staging example and the OrbStack example', () => {
  expect(found.filter((e) => e.file === 'README.md').length).toBeGreaterThanOrEqual(2);
});

test.each(found.map((e) => [`${e.file}:${e.line}`, e] as const))(
  '%s runs and synthesizes',
  (_where, e) => {
    const dir = mkdtempSync(join(tmpdir(), 'orb-example-'));
    try {
      writeFileSync(join(dir, 'example.ts'), runnable(e.code, join(dir, 'out')));
      let error = '';
      try {
        execFileSync(process.execPath, [require.resolve('tsx/cli', { paths: [REPO] }), join(dir, 'example.ts')], {
          cwd: dir,
          stdio: 'pipe',
          encoding: 'utf8',
        });
      } catch (err) {
        error = String((err as { stderr?: string }).stderr || err)
          .split('\n')
          .filter((l) => /Error|must/.test(l))
          .slice(0, 5)
          .join('\n');
      }
      expect(error).toBe('');
      const written = readdirSync(dir, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.k8s.yaml'));
      expect(written.length).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  120_000,
);
