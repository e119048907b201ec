/**
 * The dev stack's and the tests' copy of the vault ACL: the same rendered users as the manifests
 * (infra/vault-acl.ts), passwords generated here per run and never written to the repository.
 *
 * One bridge, logged wherever it is used: while services/ still sends Lua through EVALSHA (ioredis
 * `defineCommand`, and @fastify/rate-limit's Redis store), the service users get `+evalsha +eval`
 * added in the dev stack and tests only, or turns could not run at all. The manifests never carry
 * them. The bridge switches itself off once no such call is left in services/.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { aclRules, DEFAULT_USER_RULES, VAULT_USERS, type VaultUser } from '../infra/vault-acl';

const REPO = join(__dirname, '..');

/** Where services/ still sends Lua through EVALSHA/EVAL (file paths with the reason), or [] when nowhere. */
export function legacyEvalCallers(root = join(REPO, 'services')): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const src = readFileSync(p, 'utf8');
        if (/\.defineCommand\(/.test(src)) out.push(`${relative(REPO, p)} (defineCommand)`);
        if (/fastifyRateLimit,\s*\{[^}]*\bredis\b/.test(src)) out.push(`${relative(REPO, p)} (@fastify/rate-limit Redis store)`);
      }
    }
  };
  walk(root);
  return out.sort();
}

export interface DevAcl {
  /** ACL file lines (`user <name> on #<sha256 of the password> <rules>`), for `--aclfile`: no password in the file. */
  readonly lines: string[];
  readonly passwords: Readonly<Record<VaultUser, string>>;
  /** True when the EVALSHA/EVAL bridge is on (see above). */
  readonly legacyEval: boolean;
}

/** The vault's users with fresh random passwords; `admin` adds a full-access user for tooling (never in the cluster). */
export function devAcl(opts: { keyPrefix?: string; legacyEval?: boolean; admin?: string } = {}): DevAcl {
  const legacyEval = opts.legacyEval ?? legacyEvalCallers().length > 0;
  const passwords = Object.fromEntries(VAULT_USERS.map((u) => [u, randomBytes(24).toString('base64url')])) as Record<VaultUser, string>;
  const lines = [
    `user default ${DEFAULT_USER_RULES}`,
    ...VAULT_USERS.map((u) => `user ${u} on #${sha256(passwords[u])} ${aclRules(u, opts.keyPrefix ?? '', { legacyEval })}`),
    ...(opts.admin ? [`user admin on #${sha256(opts.admin)} ~* &* +@all`] : []),
  ];
  return { lines, passwords, legacyEval };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
