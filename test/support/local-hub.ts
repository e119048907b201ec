/**
 * A local stand-in for the Hugging Face hub on 127.0.0.1 (port 0), laid out like it:
 *   HEAD|GET /{repo}/resolve/{revision}/{file}
 *     - LFS files (`.onnx`): 302 to /cdn/{sha256} with X-Linked-Etag (sha256), X-Linked-Size, X-Repo-Commit
 *     - small files: 200 with ETag = the git blob sha1, Content-Length
 *   GET /cdn/{sha256} on a second port (another origin, like the hub's CDN): the bytes, with Range
 *     (206 + Content-Range) and ETag; no token needed (the hub's redirect is the authorization)
 * Faults are switched on per file to try model-fetch against a misbehaving source. Not a test file.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

export interface HubFile {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly gitSha1: string;
  readonly lfs: boolean;
}

export interface HubRequest {
  /** `hub` or `cdn`. */
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly authorization?: string;
}

export interface HubFaults {
  /** Files served with one byte flipped (headers still announce the true hash). */
  corrupt: Set<string>;
  /** Files answered with 404. */
  missing: Set<string>;
  /** File -> bytes after which the next GET of it is cut (once per entry). */
  cutAfter: Map<string, number>;
  /** File -> bytes after which every GET of it stalls (the connection stays open, silent). */
  stallAfter: Map<string, number>;
  /** File -> how many GETs of it answer 500 first. */
  fail500: Map<string, number>;
  /** Token every request must carry as `Authorization: Bearer …`; 401 without it. */
  token?: string;
}

export interface LocalHub {
  readonly url: string;
  readonly requests: HubRequest[];
  readonly faults: HubFaults;
  readonly files: Map<string, HubFile>;
  /** Bytes of each file sent so far, by file. */
  readonly sent: Map<string, number>;
  /** Adds every file under `dir` as `{repo}@{revision}/{relative path}`. */
  addDir(repo: string, revision: string, dir: string): void;
  close(): Promise<void>;
}

export function fileHashes(bytes: Buffer, lfs: boolean): HubFile {
  return {
    bytes,
    lfs,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    gitSha1: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
  };
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? walk(join(dir, e)) : [join(dir, e)]));
}

export async function startLocalHub(): Promise<LocalHub> {
  const files = new Map<string, HubFile>();
  const bySha = new Map<string, string>();
  const requests: HubRequest[] = [];
  const sent = new Map<string, number>();
  const faults: HubFaults = { corrupt: new Set(), missing: new Set(), cutAfter: new Map(), stallAfter: new Map(), fail500: new Map() };

  const sendBytes = (res: ServerResponse, key: string, req: IncomingMessage): void => {
    const f = files.get(key)!;
    const file = key.split('/').slice(-1)[0];
    let body = f.bytes;
    if (faults.corrupt.has(file)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= body.length && m) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const headers: Record<string, string | number> = {
      etag: `"${f.lfs ? f.sha256 : f.gitSha1}"`,
      'accept-ranges': 'bytes',
      'content-length': body.length - start,
    };
    if (m) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const chunk = body.subarray(start);
    const cut = faults.cutAfter.get(file);
    const stall = faults.stallAfter.get(file);
    const count = (n: number) => sent.set(file, (sent.get(file) ?? 0) + n);
    if (cut !== undefined && cut < chunk.length) {
      faults.cutAfter.delete(file);
      res.write(chunk.subarray(0, cut), () => {
        count(cut);
        res.socket?.destroy();
      });
      return;
    }
    if (stall !== undefined && stall < chunk.length) {
      res.write(chunk.subarray(0, stall), () => count(stall));
      return; // never ends: the client's idle timeout or a kill ends it
    }
    res.end(chunk, () => count(chunk.length));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://hub');
    requests.push({
      host: req.socket.localPort === cdnPort() ? 'cdn' : 'hub',
      method: req.method ?? '',
      path: decodeURIComponent(url.pathname),
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn && bySha.has(cdn[1])) {
      sendBytes(res, bySha.get(cdn[1])!, req);
      return;
    }
    if (faults.token !== undefined && req.headers.authorization !== `Bearer ${faults.token}`) {
      res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('Access to this repository is restricted');
      return;
    }
    const m = /^\/(.+?\/.+?)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURIComponent(url.pathname));
    const key = m ? `${m[1]}@${m[2]}/${m[3]}` : '';
    const f = files.get(key);
    const file = m?.[3].split('/').slice(-1)[0] ?? '';
    if (!f || faults.missing.has(file)) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    const left = faults.fail500.get(file) ?? 0;
    if (left > 0 && req.method === 'GET') {
      faults.fail500.set(file, left - 1);
      res.writeHead(500).end('Internal Error');
      return;
    }
    if (f.lfs) {
      res
        .writeHead(302, {
          location: `${cdnUrl}/cdn/${f.sha256}`,
          'x-linked-etag': `"${f.sha256}"`,
          'x-linked-size': String(f.bytes.length),
          'x-repo-commit': m![2],
          etag: `"${f.gitSha1}"`,
        })
        .end();
      return;
    }
    res.setHeader('x-repo-commit', m![2]);
    sendBytes(res, key, req);
  };

  const cdnPort = () => (cdnServer.address() as AddressInfo).port;
  const server: Server = createServer(handle);
  const cdnServer: Server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => cdnServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cdnUrl = `http://127.0.0.1:${(cdnServer.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    faults,
    files,
    sent,
    addDir(repo, revision, dir) {
      for (const p of walk(dir)) {
        const f = fileHashes(readFileSync(p), p.endsWith('.onnx'));
        const key = `${repo}@${revision}/${relative(dir, p)}`;
        files.set(key, f);
        bySha.set(f.sha256, key);
      }
    },
    close: async () => {
      for (const srv of [server, cdnServer])
        await new Promise<void>((r) => {
          srv.closeAllConnections();
          srv.close(() => r());
        });
    },
  };
}

/** A CONNECT proxy on 127.0.0.1 that counts the tunnels it opened (the egress-proxy path). */
export async function startConnectProxy(): Promise<{ url: string; tunnels: string[]; close: () => Promise<void> }> {
  const tunnels: string[] = [];
  const open = new Set<{ destroy(): void }>();
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: IncomingMessage, client, head) => {
    tunnels.push(req.url ?? '');
    open.add(client);
    client.on('close', () => open.delete(client));
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
