/**
 * Secrets stay out of logs: every header and query form that can carry a key is redacted, in the
 * functions and in the JSON log lines of a real gateway serving those requests (HTTP and WebSocket).
 */
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { scrubHeaders, scrubUrl } from '../../../services/orb/redact';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { KEYS, listen, makeApp } from './support';
import { enc, headerForms, queryForms } from './secret-forms';

const KEY = KEYS.alice;
const QUERY_FORMS = queryForms(KEY);
const HEADER_FORMS = headerForms(KEY);

describe('scrubUrl and scrubHeaders', () => {
  test.each(QUERY_FORMS)('url /v1/session%s keeps no key', (q) => {
    const out = scrubUrl(`/v1/session${q}`);
    expect(out).not.toContain(KEY);
    expect(decodeURIComponent(out.replace(/%(?![0-9a-f]{2})/gi, '%25'))).not.toContain(KEY);
  });

  test.each(HEADER_FORMS.map((h) => [Object.keys(h)[0], h] as const))('header %s keeps no key', (_n, h) => {
    expect(JSON.stringify(scrubHeaders({ host: 'x', ...h }))).not.toContain(KEY);
  });

  test('what carries no secret is kept as it was', () => {
    expect(scrubUrl('/v1/sessions/abc?after_seq=3&limit=10')).toBe('/v1/sessions/abc?after_seq=3&limit=10');
    expect(scrubUrl('/v1/session?session=9b1c&speak=true&vad=false')).toBe('/v1/session?session=9b1c&speak=true&vad=false');
    expect(scrubHeaders({ 'content-type': 'application/json', 'x-request-id': 'r1', 'user-agent': 'ua' })).toEqual({
      'content-type': 'application/json',
      'x-request-id': 'r1',
      'user-agent': 'ua',
    });
  });
});

describe('the log lines of a gateway serving requests that carry the key', () => {
  const prefix = uniquePrefix('redact');
  const redis = testRedis();
  const lines: string[] = [];
  let app: FastifyInstance;
  let host: string;

  beforeAll(async () => {
    app = await makeApp(
      prefix,
      'orb-redact',
      { LOG_LEVEL: 'debug' },
      {
        logger: undefined,
        logStream: {
          write: (l: string) => {
            lines.push(l);
          },
        },
      },
    );
    host = await listen(app);
  });
  afterAll(async () => {
    await app.close();
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  test('no form of the key, nor a ticket, reaches a log line', async () => {
    let tried = 0;
    for (const q of QUERY_FORMS) {
      for (const path of ['/v1/identity', '/v1/session', '/v1/nope']) {
        await fetch(`http://${host}${path}${q}`, { headers: { authorization: `Bearer ${KEY}` } });
        tried++;
      }
    }
    for (const h of HEADER_FORMS) {
      await fetch(`http://${host}/v1/identity`, { headers: h });
      tried++;
    }
    // WebSocket upgrades: the key in the query, in the subprotocol header, and a ticket.
    const ticket = (
      (await (
        await fetch(`http://${host}/v1/session/tickets`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })
      ).json()) as { ticket: string }
    ).ticket;
    const upgrades: [string, string[] | undefined][] = [
      [`/v1/session?token=${KEY}`, undefined],
      [`/v1/session?ticket=${ticket}`, undefined],
      ['/v1/session', [`orb.key.${KEY}`]],
    ];
    for (const [path, protocols] of upgrades) {
      await new Promise<void>((ok) => {
        const ws = new WebSocket(`ws://${host}${path}`, protocols);
        ws.on('open', () => ws.close());
        ws.on('close', () => ok());
        ws.on('error', () => ok());
        ws.on('unexpected-response', (req) => {
          req.destroy();
          ok();
        });
      });
      tried++;
    }
    await new Promise((r) => setTimeout(r, 200)); // let the close logs land
    const log = lines.join('');
    const leaks = [KEY, encodeURIComponent(KEY), enc(KEY), ticket].filter((s) => log.includes(s));
    console.log(
      `redaction: ${tried} requests carrying the key, ${lines.length} log lines, ${log.split('[Redacted]').length - 1} redactions, leaks ${leaks.length}`,
    );
    expect(lines.length).toBeGreaterThan(tried);
    expect(leaks).toEqual([]);
  });
});

test('break it: 5 000 random spellings of credential parameter names (case, percent- and double-encoding, separators) are all redacted', () => {
  const names = ['token', 'api_key', 'apikey', 'api-key', 'key', 'access_token', 'ticket', 'secret', 'password', 'auth', 'authorization'];
  let x = 0x9e3779b9;
  const r = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const spell = (c: string) => {
    const v = r() < 0.5 ? c.toUpperCase() : c;
    const p = r();
    if (p < 0.2) return `%${v.charCodeAt(0).toString(16)}`;
    if (p < 0.3) return `%25${v.charCodeAt(0).toString(16)}`;
    return v;
  };
  const leaks: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const name = [...names[Math.floor(r() * names.length)]].map(spell).join('');
    const sep = r() < 0.5 ? '&' : ';';
    const url = `/v1/session?speak=true${sep}${name}=${KEY}${r() < 0.3 ? '[]' : ''}`;
    if (scrubUrl(url).includes(KEY)) leaks.push(url);
  }
  console.log(`redaction fuzz: 5000 spellings tried, ${leaks.length} leaked`);
  expect(leaks.slice(0, 5)).toEqual([]);
});
