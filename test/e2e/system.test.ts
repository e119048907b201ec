/**
 * The whole system on the dev stack (scripts/dev.ts: real processes, an own redis-server with
 * AOF): `orb smoke`, a spoken turn in a real headless Chromium app window (as `orb desktop` opens
 * it: installable, no axe-core violations), and the failure drills — SIGKILL a
 * gateway replica mid-turn, SIGKILL a core mid-turn, restart the vault. One stack for the file,
 * tests in order (jest runs a file's tests serially); generous limits for a busy 2-core machine.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { WaveFile } from 'wavefile';
import { DevStack, startDevStack } from '../../scripts/dev';
import { main as orbCli } from '../../services/cli/orb';
import { nodeWsFactory, orbRequest, sessionWsUrl } from '../../services/cli/http';
import { runTurn } from '../../services/cli/turn';
import { seqProblems } from '../../services/cli/smoke';
import { axeViolations, chromiumMissing, installabilityErrors, openAppWindow, PageGlobals } from '../support/app-window';
import { uniquePrefix } from '../support/vault';
import { ARTIFACTS, SPEECH_FIXTURE, fakeMicWav, missingEntries, speechPcm16k, speechUnavailable, waitUntil } from './support';

const missing = missingEntries();
const noSpeech = missing.length ? 'the stack has not landed' : speechUnavailable();
if (missing.length) {
  // Reported as skipped (never as passed) until the services exist.
  console.warn(`SKIPPED whole-system e2e: ${missing.join(', ')} not landed yet`);
}
const suite = missing.length ? describe.skip : describe;
const noChromium = chromiumMissing();
if (noChromium && !missing.length) console.warn(`${noChromium} — the spoken turn in an app window (test/e2e/system.test.ts)`);
const browserTest = noChromium ? test.skip : test;

suite('whole system on the dev stack', () => {
  let stack: DevStack;
  let prefix: string;
  const lines: string[] = [];
  const tail = () => lines.slice(-60).join('\n');

  beforeAll(async () => {
    prefix = uniquePrefix('e2e');
    stack = await startDevStack({
      redisUrl: '', // an own redis-server with AOF: the vault drill restarts it
      orbPorts: [0, 0],
      speech: !noSpeech,
      keyPrefix: prefix,
      env: { LOG_LEVEL: 'warn' },
      log: (name, line) => {
        lines.push(`${name} | ${line}`);
        if (lines.length > 2000) lines.splice(0, 1000);
      },
      readyTimeoutMs: 240_000,
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    if (stack?.vault) rmSync(stack.vault.dir, { recursive: true, force: true });
  }, 120_000);

  const connect = () => nodeWsFactory(stack.apiKey);
  const wsUrls = () => stack.orbUrls.map(sessionWsUrl);
  const target = () => ({ url: stack.orbUrls[1], apiKey: stack.apiKey, timeoutMs: 60_000 });

  test('orb smoke passes against the dev stack', async () => {
    expect(noSpeech).toBeUndefined();
    const out: string[] = [];
    const code = await orbCli(
      [
        'smoke',
        '--speak',
        '--url',
        stack.orbUrls[0],
        '--url',
        stack.orbUrls[1],
        '--api-key',
        stack.apiKey,
        '--timeout',
        '120000',
        '--wav',
        SPEECH_FIXTURE,
      ],
      { out: (s) => out.push(s), err: (s) => out.push(s), env: {} },
    );
    const report = out.join('\n');
    console.log(`orb smoke:\n${report}`);
    if (code !== 0) throw new Error(`orb smoke exited ${code}:\n${report}\n--- stack ---\n${tail()}`);
    expect(report).toMatch(/smoke: all steps passed/);
  }, 300_000);

  test('orb ask writes the spoken reply as a WAV file', async () => {
    expect(noSpeech).toBeUndefined();
    mkdirSync(ARTIFACTS, { recursive: true });
    const outWav = join(ARTIFACTS, 'orb-ask-reply.wav');
    rmSync(outWav, { force: true });
    const out: string[] = [];
    const code = await orbCli(
      ['ask', SPEECH_FIXTURE, '-o', outWav, '--url', stack.orbUrls[1], '--api-key', stack.apiKey, '--timeout', '120000'],
      { out: (s) => out.push(s), err: (s) => out.push(s), env: {} },
    );
    if (code !== 0) throw new Error(`orb ask exited ${code}:\n${out.join('\n')}\n--- stack ---\n${tail()}`);
    expect(out.join('\n')).toMatch(/transcript .+\n[\s\S]*reply .+/);
    const wav = new WaveFile(readFileSync(outWav));
    expect((wav.getSamples(false, Int16Array) as unknown as Int16Array).length).toBeGreaterThan(1000);
  }, 300_000);

  browserTest(
    'a spoken turn in a Chromium app window shows transcript, verdicts and reply; installable, no axe violations',
    async () => {
      expect(noSpeech).toBeUndefined();
      mkdirSync(ARTIFACTS, { recursive: true });
      const work = mkdtempSync(join(tmpdir(), 'orb-web-'));
      const wav = fakeMicWav(join(work, 'mic.wav'));
      // The window `orb desktop` opens (--app, own profile) on the gateway's own page (web/dist, built by startDevStack).
      const win = await openAppWindow(`${stack.orbUrls[0]}/?mic=1#key=${stack.apiKey}`, [
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        // Looped: on a busy machine the capture graph may be wired after a single pass has played.
        `--use-file-for-fake-audio-capture=${wav}`,
        '--autoplay-policy=no-user-gesture-required',
      ]);
      const { page } = win;
      try {
        expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).matchMedia('(display-mode: standalone)').matches)).toBe(
          true,
        );
        try {
          await page.waitForFunction(
            () => {
              const o = (globalThis as unknown as { __orb: { reply: string; verdicts: Record<string, unknown> } }).__orb;
              return o.reply.length > 0 && Object.keys(o.verdicts).length >= 3;
            },
            undefined,
            { timeout: 180_000, polling: 250 },
          );
        } catch (err) {
          await page.screenshot({ path: join(ARTIFACTS, 'orb-web-turn-failed.png'), fullPage: true });
          const ui = await page.evaluate(() => JSON.stringify((globalThis as unknown as { __orb: unknown }).__orb)).catch(() => '?');
          throw new Error(
            `no spoken turn in the page: ${(err as Error).message}\nui: ${ui.slice(0, 2000)}\nconsole:\n${win.console.join('\n')}\n--- stack ---\n${tail()}`,
          );
        }
        // The spoken reply streams into the page's player chunk by chunk.
        await page.waitForFunction(() => (globalThis as unknown as { __orb: { audioChunks: number } }).__orb.audioChunks > 0, undefined, {
          timeout: 120_000,
          polling: 250,
        });
        const audioChunks = await page.evaluate(() => (globalThis as unknown as { __orb: { audioChunks: number } }).__orb.audioChunks);
        const transcript = (await page.textContent('#transcript'))?.trim() ?? '';
        const reply = (await page.textContent('#reply'))?.trim() ?? '';
        const verdictRows = await page.locator('#verdicts tbody tr').count();
        const consensus = (await page.textContent('#consensus'))?.trim() ?? '';
        const shot = join(ARTIFACTS, 'orb-web-turn.png');
        await page.screenshot({ path: shot, fullPage: true });
        const installErrors = await installabilityErrors(win);
        const violations = await axeViolations(page);
        console.log(
          `web turn (app window): transcript "${transcript}", ${verdictRows} verdicts, ${consensus}, reply "${reply}", ${audioChunks} audio chunks played; ` +
            `${installErrors.length} installability errors, ${violations.length} axe violations; screenshot ${shot}`,
        );
        expect(transcript.length).toBeGreaterThan(0);
        expect(verdictRows).toBeGreaterThanOrEqual(3);
        expect(consensus).toMatch(/consensus/);
        expect(reply.length).toBeGreaterThan(0);
        expect(installErrors).toEqual([]);
        expect(violations).toEqual([]);
      } finally {
        await win.close();
        rmSync(work, { recursive: true, force: true });
      }
    },
    300_000,
  );

  test('drill: SIGKILL the serving orb-core mid-turn — the client resumes on the other replica, every event once', async () => {
    const victim = stack.proc('orb-core-0');
    let killed: Promise<void> | undefined;
    const states: string[] = [];
    let afterResume = 0;
    // A spoken turn (ASR, five cores, CALI) when the speech workers run, else a typed one.
    const r = await runTurn({
      urls: wsUrls(), // orb-core-0 first: the socket starts there
      connect: connect(),
      ...(noSpeech ? { text: 'Hello there, how are you today?' } : { pcm: speechPcm16k() }),
      timeoutMs: 180_000,
      onState: (s, d) => states.push(`${s} ${d ?? ''}`),
      onEvent: (ev) => {
        if (states.some((x) => x.startsWith('reconnecting'))) afterResume++;
        // At the transcript: the turn is on the bus and its cores/CALI events are still to come.
        // (Killing right at turn.start can lose the turn: orb-core appends turn.start before it
        // publishes the asr job — reported to the gateway owner, not papered over here.)
        if (!killed && ev.type === 'transcript') killed = victim.kill('SIGKILL');
      },
    });
    await killed;
    expect(victim.running()).toBe(false);
    await victim.restart(); // before any assertion, so later tests have both replicas
    if (r.outcome !== 'ok') throw new Error(`turn after failover: ${r.outcome} ${r.error}\nstates: ${states.join(' / ')}\n${tail()}`);
    expect(states.some((s) => s.startsWith('reconnecting'))).toBe(true);
    expect(seqProblems(r.events)).toEqual([]);
    // Every event the vault holds for the turn reached the client, once.
    const hist = await orbRequest<{ events: Array<{ seq: number; turn: string }> }>(target(), 'GET', `/v1/sessions/${r.session}`);
    const stored = hist.body.events.filter((e) => e.turn === r.turn).map((e) => e.seq);
    expect(r.events.map((e) => e.seq)).toEqual(stored);
    console.log(`replica drill: ${r.events.length} events, ${afterResume} of them after resuming on orb-core-1`);
  }, 400_000);

  test('drill: SIGKILL a core mid-turn — the quorum still answers', async () => {
    const victim = stack.proc('core4-2');
    let killed: Promise<void> | undefined;
    const r = await runTurn({
      urls: wsUrls(),
      connect: connect(),
      text: 'Good morning! Can you tell me something nice?',
      timeoutMs: 120_000,
      onEvent: (ev) => {
        if (!killed && ev.type === 'turn.start') killed = victim.kill('SIGKILL');
      },
    });
    await killed;
    expect(victim.running()).toBe(false);
    if (r.outcome !== 'ok') {
      await victim.restart();
      throw new Error(`turn with a core killed: ${r.outcome} ${r.error}\n${tail()}`);
    }
    expect(r.verdicts.length).toBeGreaterThanOrEqual(3);
    expect(r.reply).toBeTruthy();
    // And a whole turn with that core down: four cores still make a quorum of three.
    const again = await runTurn({ urls: wsUrls(), connect: connect(), text: 'What can you do for me?', timeoutMs: 120_000 });
    await victim.restart();
    expect(again.outcome).toBe('ok');
    expect(again.verdicts.map((v) => Number(v.core)).sort()).not.toContain(2);
    expect(again.verdicts.length).toBeGreaterThanOrEqual(3);
  }, 400_000);

  test('drill: restart the vault (AOF) — sessions and memory survive', async () => {
    expect(stack.vault).toBeDefined();
    const first = await runTurn({ urls: wsUrls(), connect: connect(), text: 'Hi, my name is Ada.', timeoutMs: 120_000 });
    expect(first.outcome).toBe('ok');
    const sid = first.session;
    const before = await orbRequest<{ last_seq: number; turns: unknown[] }>(target(), 'GET', `/v1/sessions/${sid}`);

    await stack.vault!.restart();

    // Readiness follows the vault: wait until every gateway reports ready again.
    for (const url of stack.orbUrls) {
      await waitUntil(`${url}/readyz after the vault restart`, async () => (await fetch(`${url}/readyz`)).ok, 120_000);
    }
    const after = await waitUntil(
      'the session after the restart',
      async () => (await orbRequest<{ last_seq: number; turns: unknown[] }>(target(), 'GET', `/v1/sessions/${sid}`)).body,
      60_000,
    );
    expect(after.last_seq).toBe(before.body.last_seq);
    expect(after.turns).toEqual(before.body.turns);
    const redis = new Redis(stack.vaultUrl);
    try {
      expect(JSON.stringify(await redis.hgetall(`${prefix}memory:${sid}`))).toMatch(/Ada/);
    } finally {
      redis.disconnect();
    }
    // The workers reconnected too: a new turn on the same session recalls the name.
    const recall = await runTurn({
      urls: wsUrls(),
      connect: connect(),
      sessionId: sid,
      lastSeq: after.last_seq,
      text: 'What is my name?',
      timeoutMs: 180_000,
    });
    if (recall.outcome !== 'ok') throw new Error(`turn after the vault restart: ${recall.outcome} ${recall.error}\n${tail()}`);
    expect(recall.reply).toMatch(/Ada/);
  }, 400_000);
});
