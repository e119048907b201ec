/**
 * services/contract is the one definition of the facts infra and services share. This test is
 * the `grep` that keeps it so: outside the contract, no source file of infra/, charts/,
 * services/, scripts/ or tools/pods writes the consumer group, a contract port or a component
 * name as a literal. And the policy engine's dev profile exempts exactly the contract's rules.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ENV_PROFILES } from '../../policy/exemptions';
import { VAULT_GRANTS } from '../../infra/vault-acl';
import { vaultKeys } from '../../services/acp/keys';
import {
  COMPONENTS,
  EXEMPTABLE_RULES,
  KEY_FAMILIES,
  VAULT_USERS,
  ORB_CONFIG_NAME,
  PORTS,
  quorumProblems,
  stackNames,
  VAULT_ACL_SECRET_NAME,
} from '../../services/contract';

const REPO = join(__dirname, '..', '..');
const ROOTS = ['infra', 'charts', 'services', 'scripts', 'tools/pods'];
/** Literal ports that are other facts, not the contract's: the stand-in model hub's own port. */
// STAND_IN_HUB.port in charts/environments.ts (the stand-in hub's own port, not the gateway's).
const OTHER_FACTS: ReadonlyArray<[string, RegExp]> = [['charts/environments.ts', /^\s*port: 8080,$/]];

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'node_modules') walk(p);
      } else if (p.endsWith('.ts')) out.push(p);
    }
  };
  for (const r of ROOTS) walk(join(REPO, r));
  return out.filter((p) => !relative(REPO, p).startsWith('services/contract/'));
}

/** Code lines only: block comments, line comments and TSDoc are prose, not definitions. */
function codeLines(src: string): Array<[number, string]> {
  const noBlocks = src.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '));
  return noBlocks.split('\n').map((l, i) => [i + 1, l.replace(/(^|[^:'"`])\/\/.*$/, '$1')] as [number, string]);
}

const names = [...Object.values(COMPONENTS), ORB_CONFIG_NAME, VAULT_ACL_SECRET_NAME]
  // Role names that are also queue and ACL-user names (whisperx, xtts, cali, vault) are checked by the
  // ACP_QUEUES / VAULT_USERS types; the names only a component has must appear only in the contract.
  .filter((n) => n.includes('-') || /\d/.test(n));
const ports = Object.values(PORTS).filter((p) => p > 1000);

test('the consumer group, the ports and the component names are written once (in services/contract)', () => {
  const found: string[] = [];
  for (const file of sources()) {
    const rel = relative(REPO, file);
    for (const [n, line] of codeLines(readFileSync(file, 'utf8'))) {
      if (OTHER_FACTS.some(([f, re]) => f === rel && re.test(line))) continue;
      if (/['"`]workers['"`]/.test(line) && !/build\/services\/workers|services\/workers/.test(line))
        found.push(`${rel}:${n}: consumer group literal: ${line.trim()}`);
      for (const p of ports) if (new RegExp(`(?<![\\w.-])${p}(?![\\w])`).test(line)) found.push(`${rel}:${n}: port ${p}: ${line.trim()}`);
      for (const name of names) if (new RegExp(`['"\`]${name}['"\`]`).test(line)) found.push(`${rel}:${n}: name '${name}': ${line.trim()}`);
    }
  }
  expect(found).toEqual([]);
});

test("the policy engine lets dev exempt exactly the contract's exemptable rules", () => {
  expect([...ENV_PROFILES.dev.exemptible].sort()).toEqual([...EXEMPTABLE_RULES].sort());
});

test('the quorum rule names the field it refuses', () => {
  expect(quorumProblems(5, 3)).toEqual([]);
  expect(quorumProblems(4, 3).map((p) => p.field)).toEqual(['cores']);
  expect(quorumProblems(5, 2).map((p) => p.field)).toEqual(['quorum']);
  expect(quorumProblems(5, 6).map((p) => p.field)).toEqual(['quorum']);
});

test("stack names: the unprefixed names are the contract's; a prefix must be a DNS label start ending in -", () => {
  expect(stackNames().component).toEqual(COMPONENTS);
  expect(stackNames('blue-').component.orbCore).toBe('blue-orb-core');
  expect(stackNames('blue-').vaultUser('orb')).toBe('blue-orb');
  for (const bad of ['blue', 'Blue-', '-', '1blue-', 'a-very-long-prefix-name-']) expect(() => stackNames(bad)).toThrow(/namePrefix/);
});

test('cdk8s-plus-28 stays behind infra/k8s.ts: no other source imports it', () => {
  const importers = sources()
    .filter((f) => /from 'cdk8s-plus-28'|require\('cdk8s-plus-28'\)/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(REPO, f));
  expect(importers).toEqual(['infra/k8s.ts']);
});

test("the key families: every ACL key pattern and every key the services build is in one of the contract's families", () => {
  const inFamily = (k: string) => KEY_FAMILIES.some((f) => k.startsWith(f));
  const patterns = Object.values(VAULT_GRANTS)
    .flatMap((g) => [g.root, ...g.selectors])
    .flatMap((s) => s.keys.map((k) => k.pattern));
  expect(patterns.length).toBeGreaterThan(10);
  expect(patterns.filter((p) => !inFamily(p))).toEqual([]);
  const keys = vaultKeys('');
  const built = Object.values(keys).flatMap((v) =>
    typeof v === 'function' ? [(v as (a: string, b: string) => string)('x', 'y')] : typeof v === 'string' && v ? [v] : [],
  );
  expect(built.length).toBeGreaterThan(15);
  expect(built.filter((k) => !inFamily(k))).toEqual([]);
  expect(Object.keys(VAULT_GRANTS).sort()).toEqual([...VAULT_USERS].sort());
});
