/**
 * model-fetch against sources that misbehave in ways the hub stand-in does not: each case is a
 * small HTTP server on 127.0.0.1 with one fault, and model-fetch's entry (main) run in process.
 * Every case must end in a verified file or in one FAILED line naming the file and the reason.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../services/model-fetch/main';

jest.setTimeout(60_000);

const BODY = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31) % 251));
const SHA = createHash('sha256').update(BODY).digest('hex');
const REV = 'c'.repeat(40);
let work: string;
let n = 0;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'model-fetch-faults-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Handler = (req: IncomingMessage, res: ServerResponse, count: number) => void;

async function withServer(handler: Handler, fn: (url: string, requests: IncomingMessage[]) => Promise<void>): Promise<void> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

async function fetchInto(
  url: string,
  o: { dir?: string; env?: Record<string, string>; files?: unknown } = {},
): Promise<{ code: number; out: string; dir: string }> {
  const dir = o.dir ?? join(work, `d${n++}`);
  const lines: string[] = [];
  const code = await main(
    {
      MODEL_SOURCE: 'hub',
      MODEL_DIR: dir,
      MODEL_HUB_ENDPOINT: url,
      MODEL_REPO: 'o/r',
      MODEL_REVISION: REV,
      MODEL_FILES: JSON.stringify(o.files ?? [{ path: 'm.onnx' }]),
      MODEL_FETCH_TIMEOUT_MS: '500',
      POD_NAME: 'p',
      ...o.env,
    },
    (l) => lines.push(l),
  );
  return { code, out: lines.join('\n'), dir };
}

/** Serves BODY with the hub's headers; `range` honours Range unless told not to. */
function serve(req: IncomingMessage, res: ServerResponse, o: { range?: boolean; etag?: string; body?: Buffer } = {}): void {
  const body = o.body ?? BODY;
  const headers: Record<string, string | number> = { etag: o.etag ?? `"${SHA}"` };
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && (o.range ?? true)) {
    res.writeHead(206, {
      ...headers,
      'content-range': `bytes ${m[1]}-${body.length - 1}/${body.length}`,
      'content-length': body.length - Number(m[1]),
    });
    res.end(req.method === 'HEAD' ? undefined : body.subarray(Number(m[1])));
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

const verified = (dir: string) => existsSync(join(dir, 'm.onnx')) && readFileSync(join(dir, 'm.onnx')).equals(BODY);

test('a server that stalls mid-body is cut by the idle timeout and resumed', () =>
  withServer(
    (req, res, count) => {
      if (req.method === 'GET' && count === 2) {
        res.writeHead(200, { etag: `"${SHA}"`, 'content-length': BODY.length });
        res.write(BODY.subarray(0, 20_000)); // then silence
        return;
      }
      serve(req, res);
    },
    async (url, requests) => {
      const r = await fetchInto(url);
      expect(r.out).toMatch(
        /m\.onnx: attempt 1\/4 interrupted \(transfer cut after 20000 bytes: no data for 500 ms\); resuming from byte 20000/,
      );
      expect(r.code).toBe(0);
      expect(requests.at(-1)!.headers.range).toBe('bytes=20000-');
      expect(verified(r.dir)).toBe(true);
    },
  ));

test('a server that closes early behind a longer Content-Length is resumed', () =>
  withServer(
    (req, res, count) => {
      if (req.method === 'GET' && count === 2) {
        res.writeHead(200, { etag: `"${SHA}"`, 'content-length': BODY.length });
        res.end(BODY.subarray(0, 12_345), () => res.socket?.destroy());
        return;
      }
      serve(req, res);
    },
    async (url) => {
      const r = await fetchInto(url);
      expect(r.code).toBe(0);
      expect(r.out).toContain('resuming from byte 12345');
      expect(verified(r.dir)).toBe(true);
    },
  ));

test('a server that ignores Range (200 with the whole file) restarts the file instead of appending', () =>
  withServer(
    (req, res, count) => {
      if (req.method === 'GET' && count === 2) {
        res.writeHead(200, { etag: `"${SHA}"`, 'content-length': BODY.length });
        res.end(BODY.subarray(0, 9000), () => res.socket?.destroy());
        return;
      }
      serve(req, res, { range: false });
    },
    async (url) => {
      const r = await fetchInto(url);
      expect(r.code).toBe(0);
      expect(statSync(join(r.dir, 'm.onnx')).size).toBe(BODY.length);
      expect(verified(r.dir)).toBe(true);
    },
  ));

test('a 206 that starts elsewhere than asked is not appended', () =>
  withServer(
    (req, res, count) => {
      if (req.method === 'GET' && count === 2) {
        res.writeHead(200, { etag: `"${SHA}"`, 'content-length': BODY.length });
        res.end(BODY.subarray(0, 5000), () => res.socket?.destroy());
        return;
      }
      if (req.method === 'GET' && req.headers.range && count === 3) {
        res.writeHead(206, {
          etag: `"${SHA}"`,
          'content-range': `bytes 0-${BODY.length - 1}/${BODY.length}`,
          'content-length': BODY.length,
        });
        res.end(BODY);
        return;
      }
      serve(req, res);
    },
    async (url) => {
      const r = await fetchInto(url);
      expect(r.out).toContain('server resumed at byte 0, not 5000; restarting the file');
      expect(r.code).toBe(0);
      expect(verified(r.dir)).toBe(true);
    },
  ));

test('a source that keeps answering 500 fails after the retries, naming the file', () =>
  withServer(
    (req, res) => {
      if (req.method === 'GET') {
        res.writeHead(500).end('boom');
        return;
      }
      serve(req, res);
    },
    async (url) => {
      const r = await fetchInto(url, { env: { MODEL_FETCH_RETRIES: '2' } });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/model-fetch: FAILED m\.onnx: transfer interrupted 2 times; last: 500 from 127\.0\.0\.1:\d+$/m);
    },
  ));

test('a source that vouches for no hash, with no lock entry, is refused', () =>
  withServer(
    (req, res) => serve(req, res, { etag: '"v2-cafe"' }),
    async (url) => {
      const r = await fetchInto(url);
      expect(r.code).toBe(1);
      expect(r.out).toContain(
        'FAILED m.onnx: no sha256 in the lock file and the source sent no content hash (ETag "\\"v2-cafe\\""): add it to the lock',
      );
      // With the lock's sha256 the same source is fine.
      const locked = await fetchInto(url, { files: [{ path: 'm.onnx', sha256: SHA }] });
      expect(locked.code).toBe(0);
    },
  ));

test('a captive portal answering 200 with HTML fails the hash', () =>
  withServer(
    (req, res) => serve(req, res, { body: Buffer.from('<html>Please log in</html>') }),
    async (url) => {
      const r = await fetchInto(url);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(
        /FAILED m\.onnx: sha256 mismatch: expected [0-9a-f]{64} \(hub ETag\), got [0-9a-f]{64}; the download was deleted/,
      );
    },
  ));

test('a redirect loop fails naming the file', () =>
  withServer(
    (req, res) => {
      if (req.method === 'GET') {
        res.writeHead(302, { location: req.url }).end();
        return;
      }
      serve(req, res);
    },
    async (url) => {
      const r = await fetchInto(url);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/FAILED m\.onnx: transfer interrupted 4 times; last: more than 5 redirects/);
    },
  ));

test('an unreachable source fails naming the file and the network error', async () => {
  const r = await fetchInto('http://127.0.0.1:9', { env: { MODEL_FETCH_RETRIES: '1' } });
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/FAILED m\.onnx: HEAD http:\/\/127\.0\.0\.1:9\/o\/r\/resolve\/c+\/m\.onnx failed: connect ECONNREFUSED/);
});

test('a proxy that refuses CONNECT fails with the proxy named', () =>
  withServer(
    (_req, res) => res.writeHead(405).end(),
    async (proxyUrl) => {
      // A plain HTTP server answers CONNECT with an error, as a proxy with an allow-list would.
      const r = await fetchInto('http://hub.invalid', { env: { HTTPS_PROXY: proxyUrl, MODEL_FETCH_RETRIES: '1' } });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/FAILED m\.onnx: HEAD http:\/\/hub\.invalid\/.* failed: proxy 127\.0\.0\.1:\d+/);
    },
  ));

test('config problems exit 2 naming the variable: a path leaving the volume, an unpinned revision', async () => {
  const lines: string[] = [];
  expect(
    await main({ MODEL_SOURCE: 'hub', MODEL_DIR: join(work, 'c'), MODEL_FILES: '[{"path":"../../etc/passwd"}]' }, (l) => lines.push(l)),
  ).toBe(2);
  expect(lines.join('\n')).toContain('MODEL_FILES=');
  expect(lines.join('\n')).toContain('entry 0 path "../../etc/passwd" must be a relative path without . or .. segments');
  const l2: string[] = [];
  expect(
    await main(
      { MODEL_SOURCE: 'hub', MODEL_DIR: join(work, 'c'), MODEL_REPO: 'o/r', MODEL_REVISION: 'main', MODEL_FILES: '[{"path":"m.onnx"}]' },
      (l) => l2.push(l),
    ),
  ).toBe(1);
  expect(l2.join('\n')).toContain('FAILED config: MODEL_REVISION="main": must be a pinned 40-hex commit hash');
});

test('the cache is not trusted for another revision, nor for a file changed since it was verified', () =>
  withServer(
    (req, res) => serve(req, res),
    async (url, requests) => {
      const dir = join(work, 'cache');
      mkdirSync(dir);
      expect((await fetchInto(url, { dir })).code).toBe(0);
      const gets = () => requests.filter((r) => r.method === 'GET').length;
      const before = gets();
      expect((await fetchInto(url, { dir })).out).toContain('1 cached');
      expect(gets()).toBe(before);
      // Another revision: fetched again.
      expect((await fetchInto(url, { dir, env: { MODEL_REVISION: 'd'.repeat(40) } })).out).toContain('OK 1 fetched');
      // Edited in place (same size, new mtime): fetched again and the edit is gone.
      const p = join(dir, 'm.onnx');
      const b = readFileSync(p);
      b[7] ^= 1;
      writeFileSync(p, b);
      utimesSync(p, new Date(), new Date(Date.now() + 5000));
      expect((await fetchInto(url, { dir, env: { MODEL_REVISION: 'd'.repeat(40) } })).out).toContain('OK 1 fetched');
      expect(verified(dir)).toBe(true);
    },
  ));

test('a partial file longer than the announced size is discarded, not trusted', () =>
  withServer(
    (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(302, { location: '/cdn', 'x-linked-etag': `"${SHA}"`, 'x-linked-size': String(BODY.length) }).end();
        return;
      }
      serve(req, res);
    },
    async (url) => {
      const dir = join(work, 'long');
      mkdirSync(join(dir, '.partial', 'p'), { recursive: true });
      writeFileSync(join(dir, '.partial', 'p', 'm.onnx'), Buffer.concat([BODY, Buffer.from('trailing junk')]));
      const r = await fetchInto(url, { dir });
      expect(r.code).toBe(0);
      expect(verified(dir)).toBe(true);
    },
  ));
