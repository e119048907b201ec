/** The gateway serves the built web client at `/` without a key, while every API route still needs one. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildWeb, SHELL_FILES } from '../../../web/build';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, http, listen, makeApp, seedIdentity, waitFor } from './support';

const prefix = uniquePrefix('orbweb');
const redis = testRedis();
const root = mkdtempSync(join(tmpdir(), 'orb-web-root-'));
const apps: FastifyInstance[] = [];
let withWeb: string;
let apiOnly: string;
let built: string;

beforeAll(async () => {
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>ORB</title><script src="app.js"></script>');
  writeFileSync(join(root, 'app.js'), 'console.log("orb")');
  await seedIdentity(redis, prefix);
  const a = await makeApp(prefix, 'orb-web-0', { ORB_WEB_ROOT: root });
  const b = await makeApp(prefix, 'orb-web-1', { ORB_WEB_ROOT: join(root, 'missing') });
  // The real build (npm run build:web), as the image ships it: the installable app's files too.
  const c = await makeApp(prefix, 'orb-web-2', { ORB_WEB_ROOT: await buildWeb(join(root, 'built')) });
  apps.push(a, b, c);
  withWeb = await listen(a);
  apiOnly = await listen(b);
  built = await listen(c);
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await deletePrefix(redis, prefix);
  await redis.quit();
  rmSync(root, { recursive: true, force: true });
});

test('/ and its assets need no key and carry a same-origin CSP', async () => {
  const page = await http(withWeb, { url: '/' });
  expect(page.statusCode).toBe(200);
  expect(page.headers['content-type']).toMatch(/text\/html/);
  expect(page.body).toContain('<title>ORB</title>');
  expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
  const js = await http(withWeb, { url: '/app.js' });
  expect(js.statusCode).toBe(200);
  expect(js.headers['content-type']).toMatch(/javascript/);
});

test('API routes still need a key and unknown paths keep the API 404', async () => {
  const api = await http(withWeb, { url: '/v1/replicas' });
  expect(api.statusCode).toBe(401);
  expect(api.json().code).toBe('ORB_ERR_UNAUTHORIZED');
  // Unknown paths answer like the API: no key, 401 (nothing about what exists); with a key, 404.
  expect((await http(withWeb, { url: '/nope.html' })).statusCode).toBe(401);
  const missing = await http(withWeb, { url: '/nope.html', headers: auth('alice') });
  expect(missing.statusCode).toBe(404);
  expect(missing.json().code).toBe('ORB_ERR_NOT_FOUND');
});

test('a gateway without a built client serves the API alone', async () => {
  const page = await http(apiOnly, { url: '/', headers: auth('alice') });
  expect(page.statusCode).toBe(404);
  expect(page.json().code).toBe('ORB_ERR_NOT_FOUND');
});

test('the installable app: manifest, icons and service worker are same-origin files served without a key, revalidated on every load', async () => {
  const manifestRes = await http(built, { url: '/manifest.webmanifest' });
  expect(manifestRes.statusCode).toBe(200);
  expect(manifestRes.headers['content-type']).toMatch(/^application\/manifest\+json/);
  const manifest = manifestRes.json();
  expect(manifest).toMatchObject({
    name: expect.stringMatching(/ORB/),
    short_name: 'ORB',
    start_url: './',
    scope: './',
    display: 'standalone',
  });
  // Every icon the manifest lists is a real PNG of the size it claims.
  for (const icon of manifest.icons as Array<{ src: string; sizes: string; type: string }>) {
    const res = await fetch(`http://${built}/${icon.src}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`).toBe(icon.sizes);
  }
  expect(manifest.icons.map((i: { sizes: string }) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));

  const sw = await http(built, { url: '/sw.js' });
  expect(sw.statusCode).toBe(200);
  expect(sw.headers['content-type']).toMatch(/javascript/);
  expect(sw.body).toMatch(/orb-shell-/);
  const page = await http(built, { url: '/' });
  expect(page.body).toMatch(/<link rel="manifest" href="manifest\.webmanifest"\s*\/?>/);
  for (const f of [...SHELL_FILES, 'sw.js']) {
    const res = await http(built, { url: `/${f}` });
    expect([f, res.statusCode]).toEqual([f, 200]);
    // No max-age: unhashed names must not outlive a deploy in the HTTP cache (sw.js least of all).
    expect([f, res.headers['cache-control']]).toEqual([f, 'no-cache']);
    expect(res.headers['content-security-policy']).toMatch(/default-src 'self'.*manifest-src 'self'; worker-src 'self'/);
  }
  // Revalidation is cheap: an unchanged file is a 304.
  // (cache-control set by hand: fetch otherwise adds `no-cache` to a conditional request, which forces a 200.)
  const again = await http(built, { url: '/sw.js', headers: { 'if-none-match': sw.headers.etag, 'cache-control': 'max-age=0' } });
  expect(again.statusCode).toBe(304);
});

test('orb_replicas_alive counts the live heartbeats of every replica', async () => {
  await waitFor(
    async () => /orb_replicas_alive\{[^}]*\} 3\b/.test((await http(withWeb, { url: '/metrics' })).body),
    'all three replicas counted',
  );
  await apps[1].close();
  await waitFor(
    async () => /orb_replicas_alive\{[^}]*\} 2\b/.test((await http(withWeb, { url: '/metrics' })).body),
    'closed replica no longer counted',
  );
});
