/**
 * Facts both halves must agree on, defined once: the services read and write them, the
 * constructs render them into the manifests (KEDA triggers, …). A change here changes both.
 * This module imports nothing, so infra/ can depend on it without pulling in service code.
 */

/** The consumer group every ACP job stream is read by (workers, and KEDA's lag trigger). */
export const ACP_CONSUMER_GROUP = 'workers';

/** The job stream of a queue: a worker role (`whisperx`, `cali`, …) or `core:<n>`. */
export function jobStreamKey(queue: string, keyPrefix = ''): string {
  return `${keyPrefix}acp:jobs:${queue}`;
}

/** The client API's path prefix (REST and the WebSocket): the public Ingress routes it. */
export const PUBLIC_API_PREFIX = '/v1';

/**
 * The web client's files the gateway serves at `/` (web/dist, source maps aside). The public
 * Ingress routes exactly these and the API prefix, so /metrics, /livez and /readyz stay inside
 * the cluster; a test builds the web client and fails when this list and the build disagree.
 */
export const WEB_CLIENT_FILES: readonly string[] = [
  'index.html', 'app.js', 'orb.css', 'capture-worklet.js',
  // The installable app: manifest, icons, and the app-shell service worker (scope /).
  'manifest.webmanifest', 'sw.js', 'icon-192.png', 'icon-512.png', 'icon-maskable-512.png',
];
