/**
 * The pod runner's stand-in model hub: a Hugging Face–compatible hub serving the tiny test models
 * (tools/tiny-models/cli.ts) as two repositories, so a rendered environment whose model-fetch
 * init containers name an in-cluster hub Service can be run here (no uplink, no downloads):
 *   HEAD|GET /{repo}/resolve/{revision}/{file}
 *     - LFS files (`.onnx`): 302 to /cdn/{sha256} with X-Linked-Etag (sha256), X-Linked-Size, X-Repo-Commit
 *     - small files: 200 with ETag = the git blob sha1, X-Repo-Commit, Range (206)
 *     - an unknown repository, revision or file: 404 with the hub's X-Error-Code
 *   GET /cdn/{sha256}: the bytes, with Range (206 + Content-Range)
 * A repository's revision is a hash of its tree (each path with its sha256), so the revision a
 * lock pins names exactly these bytes. The process entry is hub-server.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { K8sObject, ref } from './manifests';

/* eslint-disable @typescript-eslint/no-explicit-any */

export type SpeechRole = 'whisperx' | 'xtts';

/** The stand-in's repositories: each file's path in the repository ← its file among the tiny models. */
export const TINY_HUB_REPOS: Record<SpeechRole, { repo: string; files: ReadonlyArray<{ path: string; from: string; as?: string }> }> = {
  // Hugging Face optimum's layout (graphs under onnx/), as prod's onnx-community/whisper-base.
  whisperx: {
    repo: 'ucm4-test/tiny-whisper',
    files: [
      ...['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'].map((f) => ({
        path: f,
        from: `whisper/${f}`,
      })),
      { path: 'onnx/encoder_model.onnx', from: 'whisper/encoder_model.onnx' },
      { path: 'onnx/decoder_model_merged.onnx', from: 'whisper/decoder_model_merged.onnx' },
    ],
  },
  // rhasspy/piper-voices' layout (lang/locale/name/quality/), delivered flat as prod does.
  xtts: {
    repo: 'ucm4-test/tiny-piper-voices',
    files: ['en_US-tiny-low.onnx', 'en_US-tiny-low.onnx.json'].map((f) => ({ path: `en/en_US/tiny/low/${f}`, from: `voices/${f}`, as: f })),
  },
};

export interface HubRepoSpec {
  readonly repo: string;
  readonly files: ReadonlyArray<{ path: string; source: string }>;
}

export interface HubFile {
  readonly path: string;
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly gitSha1: string;
  readonly lfs: boolean;
}
export interface HubRepo {
  readonly repo: string;
  readonly revision: string;
  readonly files: ReadonlyMap<string, HubFile>;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The revision of a tree: sha1 over its sorted `path NUL sha256` lines (a commit id of this content). */
export function treeRevision(files: ReadonlyArray<{ path: string; sha256: string }>): string {
  return createHash('sha1')
    .update(
      files
        .map((f) => `${f.path}\0${f.sha256}\n`)
        .sort()
        .join(''),
    )
    .digest('hex');
}

export function hubFile(path: string, bytes: Buffer): HubFile {
  return {
    path,
    bytes,
    lfs: path.endsWith('.onnx'),
    sha256: sha256(bytes),
    gitSha1: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
  };
}

/** Reads each repository's files and computes their hashes and the repository's revision. */
export function loadHubRepos(specs: readonly HubRepoSpec[]): HubRepo[] {
  return specs.map((s) => {
    const files = s.files.map((f) => hubFile(f.path, readFileSync(f.source)));
    return { repo: s.repo, revision: treeRevision(files), files: new Map(files.map((f) => [f.path, f])) };
  });
}

/** The stand-in's repositories, read from a folder written by tools/tiny-models/cli.ts. */
export function tinyHubSpecs(tinyDir: string): HubRepoSpec[] {
  return Object.values(TINY_HUB_REPOS).map((r) => ({
    repo: r.repo,
    files: r.files.map((f) => ({ path: f.path, source: join(tinyDir, f.from) })),
  }));
}

/** charts/models.tiny.lock.json as it must read for the tiny models in `tinyDir`. */
export function tinyHubLock(
  tinyDir: string,
): Record<SpeechRole, { repo: string; revision: string; files: Array<{ path: string; as?: string; sha256: string }> }> {
  const repos = loadHubRepos(tinyHubSpecs(tinyDir));
  const out = {} as ReturnType<typeof tinyHubLock>;
  for (const [role, r] of Object.entries(TINY_HUB_REPOS) as Array<[SpeechRole, (typeof TINY_HUB_REPOS)[SpeechRole]]>) {
    const served = repos.find((x) => x.repo === r.repo)!;
    out[role] = {
      repo: r.repo,
      revision: served.revision,
      files: r.files.map((f) => ({ path: f.path, ...(f.as ? { as: f.as } : {}), sha256: served.files.get(f.path)!.sha256 })),
    };
  }
  return out;
}

// ---- which hubs a rendered environment names ---------------------------------------------------

export interface HubEndpoint {
  /** The Service the endpoint names, and its namespace and port. */
  readonly service: string;
  readonly namespace: string;
  readonly port: number;
  readonly url: string;
  /** `repo@revision` each fetching container asks for, with the container. */
  readonly wants: ReadonlyArray<{ repo: string; revision: string; container: string }>;
}

function podSpec(o: K8sObject): any {
  return o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec;
}

/**
 * The hubs the containers of `objects` fetch models from (MODEL_SOURCE=hub). Each must be a
 * Service of another namespace (`http://<service>.<namespace>.svc…:<port>`): nothing leaves this
 * machine, so a hub elsewhere is an error naming the container, never a skip.
 */
export function inClusterHubs(objects: readonly K8sObject[]): HubEndpoint[] {
  const out = new Map<string, HubEndpoint & { wants: Array<{ repo: string; revision: string; container: string }> }>();
  for (const o of objects.filter((x) => ['Deployment', 'StatefulSet', 'Job', 'CronJob'].includes(x.kind))) {
    const spec = podSpec(o);
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const env = new Map<string, string>((c.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      if (env.get('MODEL_SOURCE') !== 'hub') continue;
      const where = `${ref(o)} container ${c.name}`;
      const raw = env.get('MODEL_HUB_ENDPOINT') ?? 'https://huggingface.co';
      const url = new URL(raw);
      const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$/.exec(url.hostname);
      if (!m)
        throw new Error(
          `${where}: MODEL_HUB_ENDPOINT ${raw} is not a hub Service in the cluster (http://<service>.<namespace>.svc.cluster.local:<port>): the pod runner has no uplink and stands in only for an in-cluster hub`,
        );
      if (url.protocol !== 'http:') throw new Error(`${where}: MODEL_HUB_ENDPOINT ${raw}: the stand-in hub serves plain http`);
      const port = Number(url.port || 80);
      const key = `${m[2]}/${m[1]}:${port}`;
      const hub = out.get(key) ?? { service: m[1], namespace: m[2], port, url: raw, wants: [] };
      hub.wants.push({ repo: env.get('MODEL_REPO') ?? '', revision: env.get('MODEL_REVISION') ?? '', container: where });
      out.set(key, hub);
    }
  }
  for (const h of out.values()) {
    if ([...out.values()].some((x) => x !== h && x.namespace === h.namespace))
      throw new Error(`two hub Services in namespace ${h.namespace}: the pod runner stands in one hub per namespace`);
  }
  return [...out.values()];
}

// ---- the server --------------------------------------------------------------------------------

/** One served request, as the access log writes it (one JSON line each). */
export interface HubAccess {
  method: string;
  path: string;
  status: number;
  bytes: number;
  range?: string;
}

export function hubHandler(
  repos: readonly HubRepo[],
  log: (a: HubAccess) => void = () => {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const bySha = new Map<string, HubFile>();
  for (const r of repos) for (const f of r.files.values()) bySha.set(f.sha256, f);

  const send = (req: IncomingMessage, res: ServerResponse, f: HubFile, headers: Record<string, string>, entry: HubAccess): void => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const size = f.bytes.length;
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (m && (start >= size || end < start)) {
      entry.status = 416;
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    const body = f.bytes.subarray(start, end + 1);
    entry.status = m ? 206 : 200;
    res.writeHead(entry.status, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-length': String(body.length),
      'content-type': 'application/octet-stream',
      ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(body, () => {
      entry.bytes = body.length;
    });
  };

  return (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://hub').pathname);
    const entry: HubAccess = {
      method: req.method ?? '',
      path,
      status: 0,
      bytes: 0,
      ...(req.headers.range ? { range: req.headers.range } : {}),
    };
    res.on('close', () => log(entry));
    const notFound = (code: string, msg: string) => {
      entry.status = 404;
      res.writeHead(404, { 'x-error-code': code, 'content-type': 'text/plain' }).end(msg);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      entry.status = 405;
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const f = bySha.get(cdn[1]);
      if (!f) return notFound('EntryNotFound', 'no such object');
      send(req, res, f, { etag: `"${f.sha256}"` }, entry);
      return;
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return notFound('EntryNotFound', 'not a /{repo}/resolve/{revision}/{file} path');
    const repo = repos.find((r) => r.repo === m[1]);
    if (!repo) return notFound('RepoNotFound', `Repository ${m[1]} not found`);
    if (m[2] !== repo.revision) return notFound('RevisionNotFound', `Invalid rev id: ${m[2]} (this stand-in serves ${repo.revision})`);
    const f = repo.files.get(m[3]);
    if (!f) return notFound('EntryNotFound', `Entry not found: ${m[3]}`);
    if (f.lfs) {
      entry.status = 302;
      res
        .writeHead(302, {
          location: `/cdn/${f.sha256}`,
          'x-linked-etag': `"${f.sha256}"`,
          'x-linked-size': String(f.bytes.length),
          'x-repo-commit': repo.revision,
          etag: `"${f.gitSha1}"`,
        })
        .end();
      return;
    }
    send(req, res, f, { etag: `"${f.gitSha1}"`, 'x-repo-commit': repo.revision }, entry);
  };
}

export function startHubServer(repos: readonly HubRepo[], host: string, port: number, log?: (a: HubAccess) => void): Promise<Server> {
  const server = createServer(hubHandler(repos, log));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** Sums an access log (JSON lines): requests, bytes of file content sent, by status. */
export function summarizeAccessLog(text: string): { requests: number; bytes: number; byStatus: Record<string, number> } {
  const out = { requests: 0, bytes: 0, byStatus: {} as Record<string, number> };
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    const a = JSON.parse(line) as HubAccess;
    out.requests += 1;
    out.bytes += a.bytes;
    out.byStatus[a.status] = (out.byStatus[a.status] ?? 0) + 1;
  }
  return out;
}
