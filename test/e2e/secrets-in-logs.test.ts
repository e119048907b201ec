/**
 * A planted key never reaches a log line: the whole dev stack (scripts/dev.ts: vault, seed, two
 * orb-core replicas, cores, CALI, whisperx, xtts as real processes) logs at debug while clients
 * send the key in every header and query form, over HTTP and WebSocket (by ?token=, by ticket),
 * and run real turns; then every captured line of every process is searched for it.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import { DevStack, startDevStack } from '../../scripts/dev';
import { uniquePrefix } from '../support/vault';
import { enc, headerForms, queryForms } from '../services/orb/secret-forms';
import { missingEntries, speechUnavailable } from './support';

const missing = missingEntries();
if (missing.length) console.warn(`SKIPPED secrets-in-logs e2e: ${missing.join(', ')} not landed yet`);
const suite = missing.length ? describe.skip : describe;

suite("secrets stay out of the dev stack's logs", () => {
  const KEY = `planted-${randomBytes(16).toString('hex')}`;
  const lines: string[] = [];
  let stack: DevStack;
  let stopped = false;

  beforeAll(async () => {
    stack = await startDevStack({
      redisUrl: '',
      orbPorts: [0, 0],
      speech: !speechUnavailable(),
      web: false,
      apiKey: KEY,
      keyPrefix: uniquePrefix('leak'),
      env: { LOG_LEVEL: 'debug' },
      log: (name, line) => {
        lines.push(`${name} | ${line}`);
      },
      readyTimeoutMs: 240_000,
    });
  }, 600_000);

  afterAll(async () => {
    if (!stopped) await stack?.stop();
    if (stack?.vault) rmSync(stack.vault.dir, { recursive: true, force: true });
  }, 120_000);

  test('no line of any process holds the key, an encoding of it, or a ticket', async () => {
    const bearer = { authorization: `Bearer ${KEY}` };
    let tried = 0;
    const tickets: string[] = [];
    for (const base of stack.orbUrls) {
      for (const q of queryForms(KEY)) {
        for (const path of ['/v1/identity', '/v1/session', '/v1/nope']) {
          await fetch(`${base}${path}${q}`, { headers: bearer }).then((r) => r.arrayBuffer());
          tried++;
        }
      }
      for (const h of headerForms(KEY)) {
        await fetch(`${base}/v1/identity`, { headers: h }).then((r) => r.arrayBuffer());
        tried++;
      }
      const turn = await fetch(`${base}/v1/turns`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: '{"text":"hello there"}',
      });
      expect(turn.status).toBe(200);
      tried++;
      // A WebSocket by ticket (as the web client does) and one by ?token=, each running a text turn.
      const t = (await (await fetch(`${base}/v1/session/tickets`, { method: 'POST', headers: bearer })).json()) as { ticket: string };
      tickets.push(t.ticket);
      for (const q of [`ticket=${t.ticket}`, `token=${KEY}`]) {
        const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/session?${q}&vad=false`);
        await new Promise<void>((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`no turn.end over ${q.split('=')[0]}`)), 90_000);
          ws.on('message', (d) => {
            const m = JSON.parse(d.toString()) as { type: string };
            if (m.type === 'session.ready') ws.send(JSON.stringify({ type: 'text', text: 'hello' }));
            if (m.type === 'turn.end') {
              clearTimeout(timer);
              ws.close();
              ok();
            }
          });
          ws.on('error', fail);
        });
        tried++;
      }
    }
    stopped = true;
    await stack.stop(); // every process flushes and exits: its last lines are in
    const log = lines.join('\n');
    const needles = [KEY, encodeURIComponent(KEY), enc(KEY), Buffer.from(KEY).toString('base64'), ...tickets];
    const leaks = lines.filter((l) => needles.some((n) => l.includes(n)));
    console.log(
      `dev-stack log grep: ${tried} requests carrying the key to ${stack.orbUrls.length} replicas; ` +
        `${lines.length} lines from ${new Set(lines.map((l) => l.split(' | ')[0].trim())).size} processes; ${log.split('[Redacted]').length - 1} redactions; leaked lines ${leaks.length}`,
    );
    expect(lines.length).toBeGreaterThan(tried);
    expect(leaks.slice(0, 5)).toEqual([]);
  }, 600_000);
});
