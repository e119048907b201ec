/**
 * The vault's ACL file as its init container builds it: the rendered rules of every user, a
 * random password per user in the Secret layout, and infra's ASSEMBLE_ACL_SCRIPT run over them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aclRules, ASSEMBLE_ACL_SCRIPT, VAULT_USERS, type VaultUser } from '../../infra/vault-acl';

/**
 * Writes `<dir>/users.acl` and returns each user's password. `newlineFor` users get their Secret
 * file with a trailing newline (files often have one; `kubectl create secret --from-literal` not).
 */
export function assembleAclFile(dir: string, opts: { newlineFor?: readonly VaultUser[] } = {}): Record<VaultUser, string> {
  mkdirSync(join(dir, 'rules'));
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'assemble-acl.sh'), ASSEMBLE_ACL_SCRIPT);
  const passwords = {} as Record<VaultUser, string>;
  for (const user of VAULT_USERS) {
    passwords[user] = `pw-${user}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(join(dir, 'rules', `${user}.rules`), aclRules(user));
    writeFileSync(join(dir, 'secrets', `${user}-password`), opts.newlineFor?.includes(user) ? `${passwords[user]}\n` : passwords[user]);
  }
  execFileSync('sh', [join(dir, 'assemble-acl.sh'), join(dir, 'rules'), join(dir, 'secrets'), join(dir, 'users.acl')]);
  return passwords;
}
