/**
 * Seed Job entry (`node build/services/seed/main.js`): loads the identity document
 * (IDENTITY_FILE, the ConfigMap seed-vault-identity) into identity:* of the vault. Exit 0 on
 * success, 2 on bad configuration or document, 1 when the vault is unreachable.
 */
import { readFile } from 'node:fs/promises';
import { connectVault, vaultKeys } from '../acp';
import { ConfigError, loadEnv } from '../config/env';
import { SEED_ENV } from '../config/seed';
import { VAULT_ENV } from '../config/vault';
import { parseIdentity, writeIdentity } from './identity';

export async function seed(env: NodeJS.ProcessEnv = process.env): Promise<{ name: string; version: string }> {
  const vault = loadEnv(VAULT_ENV, env);
  const cfg = loadEnv(SEED_ENV, env);
  const identity = parseIdentity(await readFile(cfg.identityFile, 'utf8'), cfg.identityFile);
  const redis = connectVault(vault, { connectionName: 'seed-vault', options: { maxRetriesPerRequest: 3 } });
  try {
    await writeIdentity(redis, vaultKeys(vault.keyPrefix), identity);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
  return { name: identity.name, version: identity.version };
}

if (require.main === module) {
  seed().then(
    (id) => process.stdout.write(`seeded identity ${id.name} version ${id.version}\n`),
    (err) => {
      const config = err instanceof ConfigError || /IDENTITY|identity|ENOENT/.test(String(err?.message));
      process.stderr.write(`seed failed: ${err?.message ?? err}\n`);
      process.exit(config ? 2 : 1);
    },
  );
}
