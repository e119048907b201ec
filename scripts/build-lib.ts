/**
 * `npm run build:lib`: compiles the construct library (charts/index.ts and what it imports:
 * infra/, the typed config, services/contract and the env schemas the manifests render) to
 * build/lib with .d.ts, and writes the library's own package.json there, so `npm pack build/lib`
 * gives an installable tarball. The repo's root package.json stays the app (services, synth, CLI):
 * a second package.json written at build time is simpler than npm workspaces, which would move
 * infra/ and charts/ into packages/ and touch every import in the repo.
 *
 * cdk8s and constructs are peer dependencies (the app brings its own, one copy of each); the
 * libraries the constructs import at run time are dependencies, at the root's versions.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'build', 'lib');
/** Imported by the compiled constructs at run time (checked after the build). */
const DEPENDENCIES = ['cdk8s-plus-28', '@kubernetes-models/keda', '@kubernetes-models/prometheus-operator'];
const PEERS = ['cdk8s', 'constructs'];
export const LIBRARY_NAME = '@ucm4/orb-constructs';

function main(): void {
  rmSync(OUT, { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.lib.json')], {
    stdio: 'inherit',
    cwd: ROOT,
  });
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const versionOf = (name: string): string =>
    root.dependencies?.[name] ?? root.devDependencies?.[name] ?? fail(`${name} is not in the root package.json`);
  const pkg = {
    name: LIBRARY_NAME,
    version: root.version,
    description: 'UCM 4 Core — Stateless ORB: cdk8s constructs that compose the stack (OrbStack) from a typed config',
    license: root.license,
    engines: root.engines,
    main: 'charts/index.js',
    types: 'charts/index.d.ts',
    exports: {
      '.': { types: './charts/index.d.ts', default: './charts/index.js' },
      './contract': { types: './services/contract/index.d.ts', default: './services/contract/index.js' },
      './package.json': './package.json',
    },
    files: ['**/*.js', '**/*.d.ts', '**/*.json', 'README.md'],
    dependencies: Object.fromEntries(DEPENDENCIES.map((d) => [d, versionOf(d)])),
    peerDependencies: Object.fromEntries(PEERS.map((d) => [d, versionOf(d)])),
  };
  writeFileSync(join(OUT, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  if (existsSync(join(ROOT, 'README.md'))) copyFileSync(join(ROOT, 'README.md'), join(OUT, 'README.md'));
  checkImports(new Set([...DEPENDENCIES, ...PEERS]));
  console.log(`build:lib: ${LIBRARY_NAME}@${pkg.version} -> ${OUT}`);
}

/** Every bare module the compiled JS requires is a declared dependency, a peer, or a node: builtin. */
function checkImports(declared: Set<string>): void {
  const out = execFileSync('grep', ['-rhoE', 'require\\("[^".][^"]*"\\)', OUT, '--include=*.js'], { encoding: 'utf8' });
  const mods = new Set(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(9, -2)),
  );
  const pkgOf = (m: string) => (m.startsWith('@') ? m.split('/').slice(0, 2).join('/') : m.split('/')[0]);
  const undeclared = [...mods].filter(
    (m) => !m.startsWith('node:') && !declared.has(pkgOf(m)) && !require('node:module').builtinModules.includes(m),
  );
  if (undeclared.length) fail(`the library requires undeclared modules: ${undeclared.join(', ')}`);
}

function fail(msg: string): never {
  throw new Error(`build:lib: ${msg}`);
}

if (require.main === module) main();
