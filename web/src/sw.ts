/**
 * The app shell's service worker: the installed ORB window opens and stays usable without the
 * network. Network first for the shell files (an online window always runs the deployed build),
 * the cache when the network fails or hangs. Everything else — the API, the WebSocket, other
 * paths — goes straight to the network: the worker never answers for the gateway.
 *
 * Versioning: web/build.ts defines ORB_SHELL from a hash of the shell files, so each build yields
 * a byte-different sw.js. The browser installs it on its next update check (sw.js is served
 * `no-cache` and registered with updateViaCache 'none'); the new worker precaches its own
 * `orb-shell-<version>`, takes over at once and deletes every older shell cache.
 */
/// <reference lib="webworker" />
export {}; // a module, so this file's `self` shadows the global one with the service worker's type
declare const self: ServiceWorkerGlobalScope;
/** Injected by web/build.ts. */
declare const ORB_SHELL: { readonly version: string; readonly files: readonly string[] };

const CACHE_PREFIX = 'orb-shell-';
const CACHE = `${CACHE_PREFIX}${ORB_SHELL.version}`;
/** How long a shell request waits for the network before the cached copy answers. */
const NETWORK_WAIT_MS = 3000;

const scope = () => new URL(self.registration.scope);
/** The page itself is cached under the scope URL (`/`), whatever its query (`?mic=1`). */
const pageKey = () => scope().toString();
const shellUrls = () => new Set(ORB_SHELL.files.map((f) => new URL(f, scope()).toString()));

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // cache: 'reload' so the precache never copies a stale HTTP-cache entry of the old build.
      await cache.addAll([pageKey(), ...shellUrls()].map((u) => new Request(u, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith(CACHE_PREFIX) && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  const bare = `${url.origin}${url.pathname}`;
  const isPage = req.mode === 'navigate' && (bare === pageKey() || bare === new URL('index.html', scope()).toString());
  if (!isPage && !shellUrls().has(bare)) return;
  event.respondWith(networkFirst(req, isPage ? pageKey() : bare));
});

async function networkFirst(req: Request, key: string): Promise<Response> {
  const cache = await caches.open(CACHE);
  const network = fetch(req).then(async (res) => {
    // Keep the cache at what the gateway serves now (a newer build's worker replaces it anyway).
    if (res.ok) await cache.put(key, res.clone());
    return res;
  });
  network.catch(() => undefined); // answered from the cache meanwhile: a late failure is no error
  const cached = () => cache.match(key);
  try {
    const res = await Promise.race([network, timeout(NETWORK_WAIT_MS)]);
    if (res && res.status < 500) return res;
    return (await cached()) ?? res ?? (await network);
  } catch (err) {
    const hit = await cached();
    if (hit) return hit;
    throw err;
  }
}

function timeout(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}
