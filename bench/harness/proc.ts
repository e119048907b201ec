/** Child processes for subjects and baselines: each server gets its own process and event loop. */
import { spawn, ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServiceHandle {
  readonly pid: number;
  readonly child: ChildProcess;
  /** stdout+stderr so far (bounded), for error messages. */
  output(): string;
  /** Resident set size in bytes, read from /proc (Linux). */
  rss(): number;
  /** User+system CPU seconds the process has used, from /proc (Linux). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolves when the service is ready (e.g. an HTTP 200); rejected after `readyTimeoutMs`. */
  readonly ready?: (h: ServiceHandle) => Promise<boolean>;
  readonly readyTimeoutMs?: number;
}

const CLK_TCK = 100; // USER_HZ on every mainstream Linux build

export function tsxBin(root: string): string {
  return join(root, 'node_modules', '.bin', 'tsx');
}

export async function spawnService(cmd: string, args: readonly string[], opts: SpawnOptions): Promise<ServiceHandle> {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + String(d)).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid ?? -1;
  const handle: ServiceHandle = {
    pid,
    child,
    output: () => out,
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    cpuSeconds: () => {
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  if (opts.ready) {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${cmd} ${args.join(' ')} exited before ready (code ${child.exitCode}):\n${out}`);
      }
      if (await opts.ready(handle).catch(() => false)) break;
      if (Date.now() > deadline) {
        await handle.stop();
        throw new Error(`${cmd} ${args.join(' ')} not ready within ${opts.readyTimeoutMs ?? 60_000} ms:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return handle;
}

/** A readiness check: GET url answers 200. */
export function httpOk(url: string, headers: Record<string, string> = {}): () => Promise<boolean> {
  return async () => {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  };
}

/** Wall-clock run of a command to completion; throws with its output on a non-zero exit. */
export async function timeCommand(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out = (out + String(d)).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
