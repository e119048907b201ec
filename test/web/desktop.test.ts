/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * The installable desktop client in a real headless Chromium app window (`orb desktop`'s own
 * launch: --app=URL, an own profile) against a real gateway on a real socket, with the five real
 * core workers and CALI in-process on the run's Redis, so typed turns get real replies.
 * Installability, accessibility (axe-core, keyboard, live regions), offline use, a gateway restart
 * mid-session and a new deploy replacing the cached shell. Headless Chromium opens the app window
 * but cannot install an app: installability is Chromium's own verdict (Page.getInstallabilityErrors).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { WaveFile } from 'wavefile';
import { drainAndClose } from '../../services/orb/drain';
import { WorkerRuntime } from '../../services/workers/runtime';
import { buildWeb, shellVersion, writeServiceWorker } from '../../web/build';
import { AppWindow, PageGlobals, axeViolations, chromiumMissing, installabilityErrors, openAppWindow } from '../support/app-window';
import { deletePrefix, testRedis, uniquePrefix } from '../support/vault';
import { KEYS, makeApp } from '../services/orb/support';
import { waitUntil } from '../support/wait';
import { writeShippedIdentity, verdictWorkers } from '../support/verdict-workers';

jest.setTimeout(300_000); // above the sum of the inner waits, so a failure names its step
const REPO = join(__dirname, '..', '..');
const skip = chromiumMissing();
if (skip) console.warn(`${skip} — test/web/desktop.test.ts`);
const suite = skip ? describe.skip : describe;

interface Ui {
  state: string;
  session?: string;
  reply: string;
  online: boolean;
  queued: number;
  reconnects: number;
  events: Array<{ seq: number; type: string; turn?: string }>;
  errors: string[];
}
const replies = (o: Ui | undefined) => o?.events.filter((e) => e.type === 'reply').length ?? 0;
const ui = (page: Page): Promise<Ui> =>
  page
    .evaluate(() => (globalThis as unknown as { __orb?: Ui }).__orb)
    .then((o) => {
      if (!o) throw new Error('the page has no __orb (app.js did not run)');
      return o;
    });
/** Polls the page's UI state from here (the page's CSP forbids the eval that string predicates need). */
async function waitUi(page: Page, what: string, pred: (o: Ui) => boolean, timeoutMs = 60_000): Promise<Ui> {
  return waitUntil(
    what,
    async () => {
      const last = await ui(page).catch(() => undefined); // undefined while the page (re)loads
      if (last && pred(last)) return last;
      // Not yet: the thrown state is what the timeout reports.
      const brief = last && { ...last, events: last.events.map((e) => `${e.seq} ${e.type}`).join(', ') };
      throw new Error(`\nui: ${JSON.stringify(brief ?? null).slice(0, 3000)}`);
    },
    timeoutMs,
    100,
  );
}
/** Names the step that hangs instead of leaving it to the jest timeout. */
async function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
const shellCaches = (page: Page) =>
  page.evaluate(async () => (await (globalThis as unknown as PageGlobals).caches.keys()).filter((k) => k.startsWith('orb-shell-')));
/** Paths held by the (single) shell cache. */
const cachedPaths = (page: Page) =>
  page.evaluate(async () => {
    const { caches } = globalThis as unknown as PageGlobals;
    const cache = await caches.open((await caches.keys())[0]);
    return (await cache.keys()).map((r) => new URL(r.url).pathname).sort();
  });
const focused = (page: Page) => page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id);

suite('the ORB as an installable desktop app', () => {
  const prefix = uniquePrefix('desktop');
  const clients: Redis[] = [];
  const workers: WorkerRuntime[] = [];
  const work = mkdtempSync(join(tmpdir(), 'orb-desktop-'));
  const root = join(work, 'web');
  let gateway: FastifyInstance | undefined;
  let port = 0;
  let origin = '';
  let win: AppWindow | undefined;
  /** Paths of the requests the gateway answers (proves which ones the service worker answered instead). */
  const served: string[] = [];

  const client = () => {
    const c = testRedis();
    clients.push(c);
    return c;
  };
  /** (Re)starts the gateway on the same port, as a restarted pod behind the same Service. */
  async function startGateway(): Promise<void> {
    gateway = await makeApp(prefix, `orb-desktop-${Date.now()}`, { ORB_WEB_ROOT: root, ORB_TURN_DEADLINE_MS: '20000' });
    await gateway.listen({ port, host: '127.0.0.1' });
    port = (gateway.server.address() as { port: number }).port;
    gateway.server.on('request', (req: { url?: string }) => served.push(req.url ?? ''));
    origin = `http://127.0.0.1:${port}`;
  }
  /** A silent microphone: the mic button really starts capture, but no utterance is ever cut. */
  const silentMic = () => {
    const wav = new WaveFile();
    wav.fromScratch(1, 48_000, '16', new Int16Array(48_000));
    const file = join(work, 'silence.wav');
    writeFileSync(file, wav.toBuffer());
    return ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${file}`];
  };
  const failWith = async (err: unknown) => {
    const shot = join(REPO, 'test', 'e2e', 'artifacts', 'orb-desktop-failed.png');
    await win?.page.screenshot({ path: shot }).catch(() => undefined);
    throw new Error(`${(err as Error).message}\nconsole:\n${win?.console.slice(-30).join('\n')}\nscreenshot ${shot}`);
  };
  /**
   * A typed turn through the page's form; resolves when its reply is shown. (Its turn.end waits for
   * reply audio, and no TTS worker runs here: the reply event is the end of what this file checks.)
   */
  async function typedTurn(page: Page, text: string): Promise<void> {
    const before = replies(await ui(page));
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
    await waitUi(page, `the reply to '${text}'`, (o) => replies(o) > before, 90_000);
  }

  beforeAll(async () => {
    await buildWeb(root);
    await writeShippedIdentity(client(), prefix);
    workers.push(...verdictWorkers(client, prefix, 200));
    await Promise.all(workers.map((w) => w.start()));
    await startGateway();
  }, 180_000);

  afterAll(async () => {
    await win?.close();
    await gateway?.close();
    await Promise.all(workers.map((w) => w.stop()));
    if (clients[0]) await deletePrefix(clients[0], prefix);
    await Promise.all(clients.map((c) => c.quit()));
    rmSync(work, { recursive: true, force: true });
  });

  test('installable: no installability errors, an app window (standalone), the shell precached; no axe violations', async () => {
    win = await openAppWindow(`${origin}/`, silentMic());
    const { page } = win;
    try {
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).navigator.serviceWorker.controller !== null, undefined, {
        timeout: 30_000,
      });
      expect(await installabilityErrors(win)).toEqual([]);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).matchMedia('(display-mode: standalone)').matches)).toBe(true);
      expect(await shellCaches(page)).toEqual([`orb-shell-${shellVersion(root)}`]);
      expect(await cachedPaths(page)).toEqual([
        '/',
        '/app.js',
        '/capture-worklet.js',
        '/icon-192.png',
        '/icon-512.png',
        '/icon-maskable-512.png',
        '/index.html',
        '/manifest.webmanifest',
        '/orb.css',
      ]);
      // The worker answers only for the shell: the API and unknown paths still reach the gateway (401 without a key).
      const statuses = await page.evaluate(async () =>
        Promise.all(['/v1/replicas', '/nope.html'].map(async (p) => (await fetch(p)).status)),
      );
      expect(statuses).toEqual([401, 401]);
      expect(await axeViolations(page)).toEqual([]);
    } catch (err) {
      await failWith(err);
    }
  });

  test('keyboard alone: Tab to the key, Enter connects, Space toggles the microphone, Enter and Space send turns; updates land in live regions', async () => {
    const { page } = win!;
    try {
      await page.focus('body');
      await page.keyboard.press('Tab');
      expect(await focused(page)).toBe('api-key');
      await page.keyboard.type(KEYS.alice);
      await page.keyboard.press('Tab');
      expect(await focused(page)).toBe('connect');
      await page.keyboard.press('Enter');
      await waitUi(page, 'connected', (o) => o.state === 'open');

      await page.keyboard.press('Tab');
      expect(await focused(page)).toBe('mic');
      await page.keyboard.press('Space');
      await page.waitForSelector('#mic[aria-pressed="true"]', { timeout: 30_000 });
      await page.keyboard.press('Space');
      await page.waitForSelector('#mic[aria-pressed="false"]', { timeout: 30_000 });

      await page.keyboard.press('Tab');
      expect(await focused(page)).toBe('text');
      await page.keyboard.type('hello there');
      await page.keyboard.press('Enter');
      await waitUi(page, 'the typed turn (Enter) is answered', (o) => replies(o) === 1, 90_000);
      await page.keyboard.type('what can you do?');
      await page.keyboard.press('Tab');
      expect(await focused(page)).toBe('send');
      await page.keyboard.press('Space');
      await waitUi(page, 'the typed turn (Space on Send) is answered', (o) => replies(o) === 2, 90_000);

      // Transcript, reply and status are live regions: a screen reader announces their updates.
      const live = await page.evaluate(() =>
        ['status', 'transcript', 'reply', 'network'].map((id) => {
          const el = (globalThis as unknown as PageGlobals).document.getElementById(id)!;
          return [id, el.getAttribute('aria-live') ?? el.getAttribute('role'), el.textContent?.length ?? 0];
        }),
      );
      expect(live).toEqual([
        ['status', 'status', expect.any(Number)],
        ['transcript', 'polite', expect.any(Number)],
        ['reply', 'polite', expect.any(Number)],
        ['network', 'status', 0],
      ]);
      expect(await page.textContent('#transcript')).toBe('what can you do?');
      expect((await page.textContent('#reply'))!.length).toBeGreaterThan(0);
      // And after a whole turn (verdict table filled, consensus shown) axe still finds nothing.
      expect(await axeViolations(page)).toEqual([]);
    } catch (err) {
      await failWith(err);
    }
  });

  test('offline: the shell reloads from the service worker, says so, queues a typed turn and resumes the session from its last seq', async () => {
    const { page, context } = win!;
    try {
      const before = await ui(page);
      const lastSeq = before.events.at(-1)!.seq;
      await context.setOffline(true);
      await page.waitForSelector('#network:not([hidden])', { timeout: 30_000 });
      expect(await page.textContent('#network')).toMatch(/^Offline\./);
      served.length = 0;
      await page.reload();
      // The whole shell came from the cache: page, script (it ran: __orb), styles.
      await waitUi(page, 'the shell runs offline', (o) => !o.online);
      expect(served).toEqual([]);
      expect(await page.title()).toBe('ORB');
      expect(
        await page.evaluate(() => {
          const g = globalThis as unknown as PageGlobals;
          return g.getComputedStyle(g.document.body).backgroundColor;
        }),
      ).toBe('rgb(13, 16, 23)');
      expect(await page.textContent('#network')).toMatch(/Offline/);
      await page.fill('#text', 'hello again');
      await page.press('#text', 'Enter');
      await waitUi(page, 'the offline turn is queued', (o) => o.queued === 1);
      expect(await page.textContent('#network')).toMatch(/1 typed turn queued/);

      await context.setOffline(false);
      await waitUi(page, 'back online, the queued turn is answered', (o) => o.state === 'open' && replies(o) === 1, 90_000);
      const after = await ui(page);
      expect(after.session).toBe(before.session);
      // After the reload the page holds only what came after the resume point: nothing replayed, nothing skipped.
      expect(after.events[0].seq).toBe(lastSeq + 1);
      expect(after.events.map((e) => e.seq)).toEqual(after.events.map((_, i) => lastSeq + 1 + i));
      expect(await page.isHidden('#network')).toBe(true);
    } catch (err) {
      await failWith(err);
    }
  });

  test('gateway restart mid-session: the window keeps working from its cache and resumes on the restarted gateway', async () => {
    const { page } = win!;
    try {
      const before = await ui(page);
      const lastSeq = before.events.at(-1)!.seq;
      await within('draining the gateway', 30_000, drainAndClose(gateway!, 0));
      await waitUi(page, 'the page sees the drop', (o) => o.state !== 'open');
      await page.reload(); // connection refused now: the service worker answers from its cache
      await waitUi(page, 'the shell runs with the gateway down', (o) => o.state === 'reconnecting' || o.state === 'connecting');
      expect(await page.textContent('#network')).toMatch(/Not connected/);
      await startGateway();
      await waitUi(page, 'resumed on the restarted gateway', (o) => o.state === 'open', 60_000);
      await typedTurn(page, 'good morning');
      // Every dial, the first and each resume, redeemed a single-use ticket: the key never rode in a URL.
      expect(win!.sockets.length).toBeGreaterThanOrEqual(2);
      for (const url of win!.sockets) {
        expect(url).toMatch(/[?&]ticket=/);
        expect(url).not.toContain(KEYS.alice);
      }
      const after = await ui(page);
      expect(after.session).toBe(before.session);
      expect(after.events[0].seq).toBe(lastSeq + 1);
      expect(after.events.map((e) => e.seq)).toEqual(after.events.map((_, i) => lastSeq + 1 + i));
    } catch (err) {
      await failWith(err);
    }
  });

  test('a new deploy replaces the cached shell: the next visit installs its worker, drops the old cache, and offline shows the new build', async () => {
    const { page, context } = win!;
    try {
      const v1 = shellVersion(root);
      expect(await shellCaches(page)).toEqual([`orb-shell-${v1}`]);
      // A new build of the page (what `npm run build:web` writes: files, then a sw.js of their hash).
      const html = readFileSync(join(root, 'index.html'), 'utf8').replace(
        '<title>ORB</title>',
        '<title>ORB</title>\n  <meta name="orb-build" content="next">',
      );
      writeFileSync(join(root, 'index.html'), html);
      const v2 = await writeServiceWorker(root);
      expect(v2).not.toBe(v1);
      await page.reload();
      expect(await page.locator('meta[name="orb-build"]').count()).toBe(1); // online: the network answers first
      await page.waitForFunction(
        async (v) => {
          const keys = (await (globalThis as unknown as PageGlobals).caches.keys()).filter((k) => k.startsWith('orb-shell-'));
          return keys.length === 1 && keys[0] === `orb-shell-${v}`;
        },
        v2,
        { timeout: 60_000, polling: 200 },
      );
      await context.setOffline(true);
      await page.reload();
      await waitUi(page, 'the new shell runs offline', (o) => !o.online);
      expect(await page.locator('meta[name="orb-build"]').count()).toBe(1);
      await context.setOffline(false);
    } catch (err) {
      await failWith(err);
    }
  });

  test('offline at start: a new window of the same profile opens from the cache while the gateway is down, and connects when it is back', async () => {
    try {
      const profile = win!.profileDir;
      await within('draining the gateway', 30_000, drainAndClose(gateway!, 0));
      await within('closing the window', 30_000, win!.close({ keepProfile: true }));
      win = await within('opening a window on the same profile', 60_000, openAppWindow(`${origin}/#key=${KEYS.alice}`, [], profile));
      await waitUi(win.page, 'the shell opens with the gateway down', (o) => o.state === 'reconnecting' || o.state === 'connecting');
      expect(await win.page.textContent('#network')).toMatch(/Not connected/);
      await startGateway();
      await waitUi(win.page, 'connected once the gateway is back', (o) => o.state === 'open', 60_000);
      await typedTurn(win.page, 'hello');
    } catch (err) {
      await failWith(err);
    }
  });
});
