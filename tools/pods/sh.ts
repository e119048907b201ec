/** Small process helpers: every system call the runner makes goes through these, so errors name the command. */
import { execFile, spawnSync } from 'node:child_process';

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; allowFail?: boolean; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number'
          ? Number((err as { code: number }).code)
          : 1
        : 0;
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${String(stderr || err?.message).trim()}`));
        return;
      }
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.on('error', () => undefined); // the command may exit before reading all of it
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function runSync(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}

/** Whether a command exists on PATH. */
export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Single-quotes a string for sh. */
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
