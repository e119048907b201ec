/**
 * System tools some tests need. A test whose tool is missing is skipped with one line that says
 * so and how to get it (`.ci/run` installs every tool, so CI skips nothing).
 */
import { spawnSync } from 'node:child_process';

const said = new Set<string>();

/** Whether `cmd` runs; when not, prints `SKIPPED: <cmd> missing (apt-get install <pkg>): <what>` once. */
export function hasTool(cmd: string, pkg: string, what: string): boolean {
  const ok = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  if (!ok && !said.has(`${cmd}:${what}`)) {
    said.add(`${cmd}:${what}`);
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED: ${cmd} missing (apt-get install ${pkg}): ${what}`);
  }
  return ok;
}

/** Root, for tests that make network namespaces; prints SKIPPED when not. */
export function isRoot(what: string): boolean {
  const ok = process.getuid?.() === 0;
  if (!ok) console.warn(`SKIPPED: root missing (run as root): ${what}`); // eslint-disable-line no-console
  return ok;
}
