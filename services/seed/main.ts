/**
 * Seed Job entry (`node build/services/seed/main.js`): loads the identity document
 * (IDENTITY_FILE, the ConfigMap seed-vault-identity) into identity:* of the vault. Exit 0 on
 * success, 2 on bad configuration or document, 1 when the vault is unreachable.
 *
 * `node build/services/seed/main.js functions` is the bootstrap step before it (the Job's init
 * container, as vault user `functions`): FUNCTION LOAD REPLACE of the `orb` library the services
 * FCALL (services/acp/functions.ts). It retries while the vault is not reachable yet.
 */
import { COMPONENTS } from '../contract';
import { readFile } from 'node:fs/promises';
import { connectVault, loadOrbFunctions, ORB_LIBRARY_VERSION, vaultKeys } from '../acp';
import { ConfigError, loadEnv } from '../config/env';
import { SEED_ENV } from '../config/seed';
import { VAULT_ENV } from '../config/vault';
import { parseIdentity, writeIdentity } from './identity';

export async function seed(env: NodeJS.ProcessEnv = process.env): Promise<{ name: string; version: string }> {
  const vault = loadEnv(VAULT_ENV, env);
  const cfg = loadEnv(SEED_ENV, env);
  const identity = parseIdentity(await readFile(cfg.identityFile, 'utf8'), cfg.identityFile);
  const redis = connectVault(vault, { connectionName: COMPONENTS.seedVault, options: { maxRetriesPerRequest: 3 } });
  try {
    await writeIdentity(redis, vaultKeys(vault.keyPrefix), identity);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
  return { name: identity.name, version: identity.version };
}

/** Loads the vault's FUNCTION library (replacing an older one); returns its version. */
export async function loadFunctions(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const vault = loadEnv(VAULT_ENV, env);
  const redis = connectVault(vault, { connectionName: 'seed-vault:functions', options: { maxRetriesPerRequest: 20 } });
  redis.on('error', () => undefined); // retried; the command's rejection reports a lasting failure
  try {
    await loadOrbFunctions(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
  return ORB_LIBRARY_VERSION;
}

if (require.main === module && process.argv[2] === 'functions') {
  loadFunctions().then(
    (v) => process.stdout.write(`loaded vault function library orb version ${v}\n`),
    (err) => {
      process.stderr.write(`function load failed: ${err?.message ?? err}\n`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
} else if (require.main === module) {
  seed().then(
    (id) => process.stdout.write(`seeded identity ${id.name} version ${id.version}\n`),
    (err) => {
      const config = err instanceof ConfigError || /IDENTITY|identity|ENOENT/.test(String(err?.message));
      process.stderr.write(`seed failed: ${err?.message ?? err}\n`);
      process.exit(config ? 2 : 1);
    },
  );
}
