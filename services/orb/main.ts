/**
 * orb-core entry point (`npm run orb`; image: `node build/services/orb/main.js`). Configuration is
 * read from the environment once and validated before anything starts.
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadEnv } from '../config/env';
import { ORB_ENV } from '../config/orb';
import { VAULT_ENV } from '../config/vault';
import { buildApp } from './app';
import { drainAndClose } from './drain';

async function main(): Promise<void> {
  let config, vault;
  try {
    config = loadEnv(ORB_ENV);
    vault = loadEnv(VAULT_ENV);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`orb-core: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const app = await buildApp({ config, vault });
  closeWithGrace({ delay: config.drainTimeoutMs, logger: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'fatal error, closing');
    else app.log.info({ signal }, 'shutting down');
    await drainAndClose(app, config.drainDelayMs);
  });
  await app.listen({ port: config.port, host: config.host });
}

main().catch((err) => {
  process.stderr.write(`orb-core failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
