/**
 * Serves the ORB web client (web/, built by `npm run build:web`) at `/`. The page holds no secret
 * (the user types the API key), so its files need no key; every API route still does. A gateway
 * without a built client (API-only images, tests) says so once and serves the API alone.
 * The client is an installable app: its manifest, icons and service worker (sw.js) are files of
 * the same build, found with the others at start-up — build before the gateway starts.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';

/**
 * Same-origin only: the page talks to this gateway's REST and WebSocket routes and plays blob
 * audio; its manifest and service worker are files of this origin too (named, not left to default-src).
 */
const CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export interface WebClientOptions {
  /** Directory holding index.html and its assets; relative paths resolve against the working directory. */
  readonly root: string;
}

/** Not wrapped in fastify-plugin on purpose: the onRoute hook must only see the static routes. */
export async function webClientPlugin(app: FastifyInstance, opts: WebClientOptions): Promise<void> {
  const root = resolve(opts.root);
  if (!existsSync(join(root, 'index.html'))) {
    app.log.info({ root }, 'no web client at ORB_WEB_ROOT (run npm run build:web); serving the API only');
    return;
  }
  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config ?? {}), auth: false };
  });
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // One route per file found at start-up instead of a catch-all, so unknown paths keep the API's 404.
    wildcard: false,
    index: ['index.html'],
    // The file names carry no content hash, so every file revalidates (ETag / Last-Modified, a
    // 304 when unchanged): a new deploy is never mixed with an HTTP-cached part of the old one, and
    // the browser sees a new sw.js at once. Offline, the service worker's cache answers instead.
    cacheControl: false,
    setHeaders: (reply, path) => {
      reply.header('cache-control', 'no-cache');
      // The registered type of web app manifests (mime tables have not always had it).
      if (path.endsWith('.webmanifest')) reply.header('content-type', 'application/manifest+json');
      // sw.js lives at the root and registers with scope './': no Service-Worker-Allowed needed.
      reply.header('content-security-policy', CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}
