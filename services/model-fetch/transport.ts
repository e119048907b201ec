/**
 * The HTTP(S) requests model-fetch makes, on node's own http/https modules: HEAD and ranged GET,
 * redirects (credentials only to the origin that was asked), an idle timeout, and an optional
 * egress proxy reached by CONNECT (NetworkPolicies cannot name hosts, so prod may route through one).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';

export interface HttpRequest {
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers?: Record<string, string>;
  /** Headers sent only while the request stays on `url`'s origin (Authorization). */
  readonly originHeaders?: Record<string, string>;
  /** http://host:port of a CONNECT proxy. */
  readonly proxy?: URL;
  /** No byte for this long cuts the response. */
  readonly idleTimeoutMs: number;
  /** Redirects followed; 0 hands a 3xx back (the hub's HEAD answers carry the hashes on the 302). @default 5 */
  readonly maxRedirects?: number;
  /** Sign a request (S3) once its final URL and headers are known. */
  readonly sign?: (url: URL, headers: Record<string, string>) => Record<string, string>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly url: URL;
  readonly body: http.IncomingMessage;
}

function tunnel(proxy: URL, target: URL, idleTimeoutMs: number): Promise<Duplex> {
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname,
      port: proxy.port || 80,
      method: 'CONNECT',
      path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}` },
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`proxy ${proxy.host} did not answer CONNECT within ${idleTimeoutMs} ms`)));
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT ${target.hostname}:${port} (${res.statusCode})`));
        return;
      }
      resolve(socket);
    });
    req.on('error', (err) => reject(new Error(`proxy ${proxy.host}: ${err.message}`)));
    req.end();
  });
}

async function once(r: HttpRequest, url: URL, headers: Record<string, string>): Promise<http.IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!mod) throw new Error(`unsupported URL scheme ${url.protocol} (${url.href})`);
  const socket = r.proxy ? await tunnel(r.proxy, url, r.idleTimeoutMs) : undefined;
  const options: https.RequestOptions = {
    method: r.method,
    hostname: url.hostname,
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    headers,
  };
  if (socket) {
    options.createConnection = () => (url.protocol === 'https:' ? tls.connect({ socket, servername: url.hostname }) : socket) as never;
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(options, (res) => {
      // The idle timer keeps running on the body: a stalled transfer is cut and resumed.
      res.socket?.setTimeout(r.idleTimeoutMs, () => res.destroy(new Error(`no data for ${r.idleTimeoutMs} ms`)));
      resolve(res);
    });
    req.setTimeout(r.idleTimeoutMs, () => req.destroy(new Error(`no answer within ${r.idleTimeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request, following redirects; the body is the caller's to consume or destroy. */
export async function httpRequest(r: HttpRequest): Promise<HttpResponse> {
  let url = r.url;
  for (let hop = 0; ; hop++) {
    const sameOrigin = url.origin === r.url.origin;
    let headers: Record<string, string> = { 'user-agent': 'ucm4-model-fetch/1', ...r.headers, ...(sameOrigin ? r.originHeaders : {}) };
    if (r.sign) headers = r.sign(url, headers);
    const res = await once(r, url, headers);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    const max = r.maxRedirects ?? 5;
    if (status >= 300 && status < 400 && location && max > 0) {
      res.resume();
      if (hop >= max) throw new Error(`more than ${max} redirects from ${r.url.href}`);
      url = new URL(location, url);
      continue;
    }
    return { status, headers: res.headers, url, body: res };
  }
}
