/**
 * Worker entry: `node build/services/workers/main.js <core|cali|whisperx|xtts>`.
 *
 * Adding a role is a two-line change: a file exporting a `RoleFactory`
 * (services/workers/runtime: `(ctx: RoleContext) => WorkerRole`, with `name`, `queue` — e.g.
 * `whisperx` reads `acp:jobs:whisperx` —, `load()`, `handle(job)` or `handleBatch(jobs)`,
 * `dispose()`), and one entry in ROLES below. Results go out with `job.emit(type, data)`; the
 * runtime acks after the handler resolves and serves /livez /readyz /metrics on PORT.
 */
import { ConfigError } from '../config/env';
import { RoleFactory, runWorker } from './runtime';

/** Lazy so a role's heavy dependencies load only in its own pods. */
const ROLES: Record<string, () => Promise<RoleFactory>> = {
  core: async () => (await import('./core/role')).coreRole,
  cali: async () => (await import('./cali/role')).caliRole,
  whisperx: async () => (await import('./asr/role')).asrRole,
  xtts: async () => (await import('./tts/role')).ttsRole,
};

export async function main(argv: string[]): Promise<void> {
  const name = argv[0];
  const load = name ? ROLES[name] : undefined;
  if (!load) {
    process.stderr.write(`usage: worker <${Object.keys(ROLES).join('|')}> (got ${JSON.stringify(name ?? '')})\n`);
    process.exit(2);
  }
  try {
    await runWorker(await load());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    if ((err as Error)?.name === 'ExecutionProviderError') {
      // By name: importing the class would load onnxruntime in every role's process.
      // One line, the pod's termination message (FallbackToLogsOnError): what failed and what to change.
      process.stderr.write(`worker failed: ${(err as Error).message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`worker failed: ${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  });
}
