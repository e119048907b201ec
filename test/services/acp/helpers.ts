/** Shared helpers of the bus/worker tests: condition waits (never fixed sleeps) and worker config. */
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { loadEnv } from '../../../services/config/env';
import { WORKER_ENV } from '../../../services/config/worker';
import { WorkerConfig } from '../../../services/workers/runtime';

export const REPO = join(__dirname, '..', '..', '..');

/** The tests' one polling helper (test/support/wait.ts). */
export { waitUntil } from '../../support/wait';

/** Worker config for in-process runtimes: short BLOCK so stop() is prompt. */
export function workerConfig(over: Partial<WorkerConfig> = {}): WorkerConfig {
  return { ...loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '200', LOG_LEVEL: 'silent', ACP_TRIM_INTERVAL_MS: '0' }), ...over };
}

/** Starts a TypeScript entry as a real child process (node --import tsx, so signals hit it directly). */
export function spawnTs(file: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: REPO,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  return Object.assign(child, { output: () => out });
}

/** Resolves with the exit code (or signal) once the child has exited. */
export function exited(child: ChildProcess): Promise<number | NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
}
