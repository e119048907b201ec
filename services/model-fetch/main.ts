/**
 * `node build/services/model-fetch/main.js`: the `model-fetch` init container of the speech
 * workers. Reads MODEL_FETCH_ENV, delivers and verifies the files, exits 0; on any failure prints
 * `model-fetch: FAILED <file>: <reason>` and exits 1 (the pod's init status and
 * `kubectl logs -c model-fetch` show that line). Config errors exit 2 naming the variable.
 */
import { performance } from 'node:perf_hooks';
import { ConfigError, loadEnv } from '../config/env';
import { MODEL_FETCH_ENV } from '../config/model-fetch';
import { ModelFetchError, ModelFetcher, sourceKey } from './fetch';

export async function main(
  env: NodeJS.ProcessEnv = process.env,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  let cfg;
  try {
    cfg = loadEnv(MODEL_FETCH_ENV, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      out(`model-fetch: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const t0 = performance.now();
  out(
    `model-fetch: ${cfg.files.length} file(s) from ${sourceKey(cfg)} into ${cfg.modelDir}${cfg.proxy ? ` via proxy ${new URL(cfg.proxy).host}` : ''}`,
  );
  try {
    const reports = await new ModelFetcher(cfg, (l) => out(`model-fetch: ${l}`)).run();
    const count = (o: string) => reports.filter((r) => r.outcome === o).length;
    const bytes = reports.filter((r) => r.outcome === 'fetched').reduce((n, r) => n + r.bytes, 0);
    out(
      `model-fetch: OK ${count('fetched')} fetched (${bytes} bytes), ${count('cached')} cached, ${count('verified')} verified in place, ${Math.round(performance.now() - t0)} ms`,
    );
    return 0;
  } catch (err) {
    const msg = err instanceof ModelFetchError ? err.message : `unexpected error: ${(err as Error)?.stack ?? err}`;
    out(`model-fetch: FAILED ${msg}`);
    return 1;
  }
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`model-fetch: FAILED unexpected error: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
