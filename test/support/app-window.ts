/**
 * The ORB in a real Chromium app window, as `orb desktop` opens it (services/cli/desktop.ts:
 * `--app=URL`, an own profile), headless, driven over the DevTools protocol by playwright-core.
 * Headless Chromium opens the app window (display-mode: standalone) but cannot install an app:
 * installability is what Chromium reports through `Page.getInstallabilityErrors`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchDesktop } from '../../services/cli/desktop';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The line a test prints instead of running when Chromium is not installed (never a pass). */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : 'SKIPPED: chromium missing (apt-get install chromium)';
}

export const HEADLESS_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=Translate,MediaRouter',
];

export interface AppWindow {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  readonly profileDir: string;
  /** Browser console lines and page errors, for failure messages. */
  readonly console: string[];
  /** URLs of the WebSockets the page opened (how it authenticated them). */
  readonly sockets: string[];
  /** Closes the browser; removes the profile unless asked to keep it for another window. */
  close(opts?: { keepProfile?: boolean }): Promise<void>;
}

/** Opens `url` in an app window; `profileDir` reuses a profile (its service worker and caches), else a fresh one. */
export async function openAppWindow(
  url: string,
  extraArgs: readonly string[] = [],
  profileDir = mkdtempSync(join(tmpdir(), 'orb-app-window-')),
): Promise<AppWindow> {
  const { chromium } = await import('playwright-core');
  const child = launchDesktop({
    url,
    browser: CHROMIUM,
    profileDir,
    detached: false,
    extraArgs: [...HEADLESS_ARGS, '--remote-debugging-port=0', ...extraArgs],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const portFile = join(profileDir, 'DevToolsActivePort');
  rmSync(portFile, { force: true }); // a reused profile keeps the last browser's
  const deadline = Date.now() + 30_000;
  while (!existsSync(portFile) || !readFileSync(portFile, 'utf8').includes('\n')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`chromium did not start its DevTools endpoint (exit ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const port = readFileSync(portFile, 'utf8').split('\n')[0];
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  // The default context is the profile's own (an installable, non-incognito one); --app opened its only page.
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.waitForEvent('page'));
  const lines: string[] = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  return {
    browser,
    context,
    page,
    profileDir,
    console: lines,
    sockets,
    async close(opts) {
      await browser.close().catch(() => undefined);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // A busy machine can take a while; its helper processes still write the profile until then.
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (opts?.keepProfile) return;
      try {
        rmSync(profileDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
      } catch (err) {
        console.warn(`left ${profileDir}: ${(err as Error).message}`); // cleanup, not a result
      }
    },
  };
}

/** What Chromium says stands between the page and installation (an empty list: installable). */
export async function installabilityErrors(w: AppWindow): Promise<Array<{ errorId: string }>> {
  const cdp = await w.context.newCDPSession(w.page);
  try {
    const r = await cdp.send('Page.getInstallabilityErrors');
    return r.installabilityErrors as Array<{ errorId: string }>;
  } finally {
    await cdp.detach();
  }
}

/**
 * The page globals that page.evaluate callbacks use (they run in the page; this program is
 * type-checked without the DOM library, which would clash with Node's fetch types).
 */
export interface PageGlobals {
  document: {
    activeElement: { id: string } | null;
    body: object;
    getElementById(id: string): { getAttribute(n: string): string | null; textContent: string | null } | null;
  };
  navigator: { onLine: boolean; serviceWorker: { controller: object | null } };
  caches: { keys(): Promise<string[]>; open(k: string): Promise<{ keys(): Promise<Array<{ url: string }>> }> };
  matchMedia(q: string): { matches: boolean };
  getComputedStyle(el: object): { backgroundColor: string };
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
}

/**
 * axe-core's violations on the page as it is now. The script goes in through the DevTools protocol
 * (page.evaluate), which the page's strict CSP does not govern — no inline <script> is added.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  return page.evaluate(async () => {
    const res = await (globalThis as unknown as { axe: typeof import('axe-core') }).axe.run(
      (globalThis as unknown as { document: never }).document,
    );
    return res.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, help: v.help, nodes: v.nodes.length }));
  });
}
