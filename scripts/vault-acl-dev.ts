/**
 * The dev stack's and the tests' copy of the vault ACL: the same rendered users as the manifests
 * (infra/vault-acl.ts), passwords generated here per run and never written to the repository.
 */
import { createHash, randomBytes } from 'node:crypto';
import { aclRules, DEFAULT_USER_RULES, VAULT_USERS, type VaultUser } from '../infra/vault-acl';

export interface DevAcl {
  /** ACL file lines (`user <name> on #<sha256 of the password> <rules>`), for `--aclfile`: no password in the file. */
  readonly lines: string[];
  readonly passwords: Readonly<Record<VaultUser, string>>;
}

/** The vault's users with fresh random passwords; `admin` adds a full-access user for tooling (never in the cluster). */
export function devAcl(opts: { keyPrefix?: string; admin?: string } = {}): DevAcl {
  const passwords = Object.fromEntries(VAULT_USERS.map((u) => [u, randomBytes(24).toString('base64url')])) as Record<VaultUser, string>;
  const lines = [
    `user default ${DEFAULT_USER_RULES}`,
    ...VAULT_USERS.map((u) => `user ${u} on #${sha256(passwords[u])} ${aclRules(u, opts.keyPrefix ?? '')}`),
    ...(opts.admin ? [`user admin on #${sha256(opts.admin)} ~* &* +@all`] : []),
  ];
  return { lines, passwords };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
