/** REST side of the ORB gateway for the CLI: Bearer auth, JSON, errors carrying the ORB_ERR_* code. */
import WebSocket from 'ws';
import type { WsLike } from '../client/session-client';

export class OrbHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'OrbHttpError';
  }
}

export class OrbUnreachableError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url}: ${(cause as Error)?.cause ? String((cause as { cause: unknown }).cause) : String(cause)}`);
    this.name = 'OrbUnreachableError';
  }
}

export interface OrbTarget {
  /** Base URL of the gateway, e.g. http://127.0.0.1:8080 or http://orb-core. */
  readonly url: string;
  readonly apiKey: string;
  /** Per-request limit. @default 60000 */
  readonly timeoutMs?: number;
}

export async function orbRequest<T = unknown>(
  t: OrbTarget,
  method: string,
  path: string,
  body?: unknown,
  opts: { auth?: boolean; contentType?: string; accept?: string } = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  const url = new URL(path, t.url.endsWith('/') ? t.url : `${t.url}/`).toString();
  const headers: Record<string, string> = {};
  if (opts.auth !== false) headers.authorization = `Bearer ${t.apiKey}`;
  let payload: string | Uint8Array | undefined;
  if (body !== undefined) {
    if (body instanceof Uint8Array) {
      payload = body;
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
  }
  if (opts.accept) headers.accept = opts.accept;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(t.timeoutMs ?? 60_000) });
  } catch (err) {
    if ((err as Error).name === 'TimeoutError')
      throw new OrbHttpError(0, 'ORB_CLI_TIMEOUT', `${method} ${path} got no answer within ${t.timeoutMs ?? 60_000} ms`);
    throw new OrbUnreachableError(url, err);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const b = (parsed ?? {}) as { code?: string; message?: string };
    throw new OrbHttpError(res.status, b.code ?? 'HTTP_' + res.status, b.message ?? text.slice(0, 300));
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** ws://…/v1/session for a base URL. */
export function sessionWsUrl(base: string): string {
  const u = new URL('/v1/session', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** HTTP refusals of the upgrade, as the close codes the session client treats as final or not. */
const REFUSAL_CLOSE: Record<number, number> = { 401: 4401, 404: 4404, 429: 4429, 400: 1008, 413: 1009, 415: 1003 };

/**
 * A `ws` client with the Bearer header (Node can set headers; the browser uses `?token=`). The
 * gateway refuses a bad key/session/seq with a plain HTTP answer before upgrading; that status
 * becomes a close code so a 401 or 404 ends the session instead of retrying forever.
 */
export function nodeWsFactory(apiKey: string): (url: string) => WsLike {
  return (url) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` }, maxPayload: 16 * 1024 * 1024 });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += String(c);
      });
      res.on('end', () => {
        req.destroy();
        let detail = body.slice(0, 200);
        try {
          const j = JSON.parse(body) as { code?: string; message?: string };
          detail = `${j.code ?? ''} ${j.message ?? ''}`.trim();
        } catch {
          /* not JSON */
        }
        const code = REFUSAL_CLOSE[res.statusCode ?? 0] ?? 1013;
        (ws as unknown as WsLike).onclose?.({ code, reason: `HTTP ${res.statusCode} ${detail}`.slice(0, 120) });
      });
    });
    return ws as unknown as WsLike;
  };
}
