/**
 * `orb desktop`: which browser it picks, the clear error when there is none, and the command line it
 * really starts (a stand-in browser script records its argv). The real browser in a real app window
 * is test/web/desktop.test.ts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, main } from '../../../services/cli/orb';
import { BROWSER_NAMES, findBrowser } from '../../../services/cli/desktop';
import { freePort } from '../../../tools/redis/redis-server';
import { waitUntil } from '../../support/wait';

const work = mkdtempSync(join(tmpdir(), 'orb-desktop-cli-'));
const emptyBin = join(work, 'empty-bin');
const fakeBin = join(work, 'bin');
const argvFile = join(work, 'argv.txt');
let server: Server;
let noClient: string;

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Waits for the detached stand-in browser to have written its command line. */
async function recordedArgv(): Promise<string[]> {
  await waitUntil('the stand-in browser to run', () => existsSync(argvFile) && readFileSync(argvFile, 'utf8').endsWith('END\n'), 10_000);
  return readFileSync(argvFile, 'utf8').split('\n').slice(0, -2);
}

beforeAll(async () => {
  mkdirSync(emptyBin);
  mkdirSync(fakeBin);
  // A Chromium stand-in: records each argument on a line, then END.
  writeFileSync(
    join(fakeBin, 'google-chrome'),
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${argvFile}'\necho END >> '${argvFile}'\n`,
  );
  chmodSync(join(fakeBin, 'google-chrome'), 0o755);
  // A gateway-like server without a web client: every path is a 404.
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  noClient = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => rmSync(argvFile, { force: true }));

test('no Chromium-family browser: exit 7 and a message naming what was looked for and how to fix it', async () => {
  const r = await run(['desktop'], { PATH: emptyBin, HOME: work });
  expect(r.code).toBe(EXIT.missing);
  for (const name of BROWSER_NAMES) expect(r.err).toContain(name);
  expect(r.err).toMatch(/apt-get install chromium/);
  expect(r.err).toMatch(/--browser PATH or ORB_BROWSER/);
  expect(() => findBrowser({ PATH: emptyBin })).toThrow(/no Chromium-family browser found/);
});

test('--browser and ORB_BROWSER that are not executables are named in the error', async () => {
  const flag = await run(['desktop', '--browser', join(work, 'nope')], { PATH: fakeBin });
  expect(flag.code).toBe(EXIT.missing);
  expect(flag.err).toMatch(/browser '.*nope' \(--browser\) is not an executable file/);
  const env = await run(['desktop'], { PATH: fakeBin, ORB_BROWSER: join(work, 'nope') });
  expect(env.err).toMatch(/\(ORB_BROWSER\)/);
});

test('opens the gateway page in an app window with its own profile (found on PATH); a down gateway is only a note', async () => {
  const port = await freePort();
  const profile = join(work, 'profile');
  const r = await run(['desktop', '--url', `http://127.0.0.1:${port}`, '--profile', profile], {
    PATH: `${emptyBin}:${fakeBin}`,
    HOME: work,
  });
  expect(r.code).toBe(EXIT.ok);
  expect(r.err).toMatch(/not reachable now.*offline copy/);
  expect(r.out).toContain(`opened http://127.0.0.1:${port}/ in an app window (${join(fakeBin, 'google-chrome')}`);
  const argv = await recordedArgv();
  expect(argv).toEqual([`--app=http://127.0.0.1:${port}/`, `--user-data-dir=${profile}`, '--no-first-run', '--no-default-browser-check']);
  expect(existsSync(profile)).toBe(true);
});

test("the default profile is ~/.config/orb-desktop (XDG_CONFIG_HOME when set), never the user's own browser profile", async () => {
  const port = await freePort();
  await run(['desktop', '--url', `http://127.0.0.1:${port}`], { PATH: fakeBin, HOME: work });
  expect(await recordedArgv()).toContain(`--user-data-dir=${join(work, '.config', 'orb-desktop')}`);
  rmSync(argvFile);
  await run(['desktop', '--url', `http://127.0.0.1:${port}`], { PATH: fakeBin, HOME: work, XDG_CONFIG_HOME: join(work, 'xdg') });
  expect(await recordedArgv()).toContain(`--user-data-dir=${join(work, 'xdg', 'orb-desktop')}`);
});

test('a gateway that serves no web client is an error (exit 5) before any window opens', async () => {
  const r = await run(['desktop', '--url', noClient, '--profile', join(work, 'p2')], { PATH: fakeBin });
  expect(r.code).toBe(EXIT.http);
  expect(r.err).toMatch(/serves no web client \(manifest\.webmanifest: HTTP 404\).*npm run build:web/);
  await new Promise((res) => setTimeout(res, 300));
  expect(existsSync(argvFile)).toBe(false);
});
