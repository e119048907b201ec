/** The gateway serves the built web client at `/` without a key, while every API route still needs one. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, http, listen, makeApp, seedIdentity, waitFor } from './support';

const prefix = uniquePrefix('orbweb');
const redis = testRedis();
const root = mkdtempSync(join(tmpdir(), 'orb-web-root-'));
const apps: FastifyInstance[] = [];
let withWeb: string;
let apiOnly: string;

beforeAll(async () => {
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>ORB</title><script src="app.js"></script>');
  writeFileSync(join(root, 'app.js'), 'console.log("orb")');
  await seedIdentity(redis, prefix);
  const a = await makeApp(prefix, 'orb-web-0', { ORB_WEB_ROOT: root });
  const b = await makeApp(prefix, 'orb-web-1', { ORB_WEB_ROOT: join(root, 'missing') });
  apps.push(a, b);
  withWeb = await listen(a);
  apiOnly = await listen(b);
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

test('orb_replicas_alive counts the live heartbeats of every replica', async () => {
  await waitFor(async () => /orb_replicas_alive\{[^}]*\} 2\b/.test((await http(withWeb, { url: '/metrics' })).body), 'both replicas counted');
  await apps[1].close();
  await waitFor(async () => /orb_replicas_alive\{[^}]*\} 1\b/.test((await http(withWeb, { url: '/metrics' })).body), 'closed replica no longer counted');
});
