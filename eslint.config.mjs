// ESLint (flat config): the import boundaries between the layers, plus a few correctness rules.
// Formatting is Prettier's job (.prettierrc), not ESLint's. `npm run lint` runs it; .ci/run too.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';
import boundaries from './tools/lint/import-boundaries.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));

/**
 * The arrows that must not exist. `from` and `target` are repo-relative folders ('.' = the whole
 * repo); test/lint/fixtures holds one refused import per zone (test/lint/boundaries.test.ts).
 */
export const ZONES = [
  {
    from: ['services/orb'],
    target: ['services/workers'],
    reason: 'the gateway does not run worker code; shared inference lives in services/inference',
  },
  {
    from: ['services/inference'],
    target: ['services/orb', 'services/workers'],
    reason: 'shared inference is below both the gateway and the workers',
  },
  {
    from: ['web'],
    target: ['services/cli'],
    reason: 'the browser client shares the session client (services/client), not the CLI',
  },
  {
    from: ['services/client'],
    target: ['services/cli', 'services/orb'],
    reason: 'the session client runs in the browser and the CLI alike: it imports neither side',
  },
  {
    from: ['infra', 'charts'],
    target: ['policy'],
    reason: 'the constructs take exemptions as data (services/contract); the policy engine is a tool that reads their output',
  },
  {
    from: ['services'],
    target: ['infra', 'charts', 'policy'],
    reason: 'the services run without the constructs; shared facts live in services/contract',
  },
  {
    from: ['.'],
    except: ['test'],
    target: ['test'],
    reason: 'nothing outside test/ imports test/; shared tools live in tools/',
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'build/**',
      'coverage/**',
      'web/dist/**',
      'bench/results/**',
      '.tsx/**',
      // One refused import per forbidden arrow; test/lint/boundaries.test.ts lints them on purpose.
      'test/lint/fixtures/**',
    ],
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'commonjs' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
  },
  {
    files: ['**/*.{ts,mts,cts,js,cjs,mjs}'],
    plugins: { boundaries, '@typescript-eslint': tseslint.plugin },
    // Existing disable comments name rules this small set leaves off; they are not errors here.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      'boundaries/no-cross-layer': ['error', { root, zones: ZONES }],
      // Correctness, not style: each one is a bug when it fires.
      'no-debugger': 'error',
      'no-dupe-keys': 'error',
      'no-dupe-else-if': 'error',
      'no-duplicate-case': 'error',
      'no-self-assign': 'error',
      'no-self-compare': 'error',
      'no-unreachable': 'error',
      'no-unsafe-finally': 'error',
      'no-unsafe-negation': 'error',
      'no-cond-assign': ['error', 'except-parens'],
      'no-constant-binary-expression': 'error',
      'no-async-promise-executor': 'error',
      'no-compare-neg-zero': 'error',
      'use-isnan': 'error',
      'valid-typeof': 'error',
      '@typescript-eslint/no-misused-new': 'error',
      '@typescript-eslint/no-duplicate-enum-values': 'error',
      '@typescript-eslint/prefer-as-const': 'error',
    },
  },
);
