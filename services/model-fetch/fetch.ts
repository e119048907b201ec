/**
 * Delivers a speech role's model files into MODEL_DIR and proves them: every file's hash must
 * match the committed lock (sha256) or the source's own content hash. Transfers resume with
 * Range after an interruption (in this run and across container restarts), a verified cache is
 * reused without a transfer, and every failure names the file and the reason.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import { destinationOf, VERIFIED_MARKER, type ModelFileSpec, type MODEL_FETCH_ENV } from '../config/model-fetch';
import type { EnvValues } from '../config/env';
import { hubFileUrl, hubHash, s3Hash, s3ObjectUrl, signS3, type ExpectedHash } from './sources';
import { httpRequest, type HttpRequest, type HttpResponse } from './transport';

export type ModelFetchConfig = EnvValues<typeof MODEL_FETCH_ENV>;

/** A failure of one file, for the one line the operator reads: `<file>: <reason>`. */
export class ModelFetchError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ModelFetchError';
  }
}

/** A failure worth another attempt (a cut transfer, a 5xx): the next attempt resumes. */
class TransientError extends Error {}

export interface FetchReport {
  readonly file: string;
  readonly outcome: 'fetched' | 'cached' | 'verified';
  readonly bytes: number;
  /** Bytes already on disk when the transfer (re)started: > 0 means a resume. */
  readonly resumedFrom: number;
  readonly attempts: number;
  readonly hash: string;
}

interface Marker {
  readonly source: string;
  readonly files: Record<string, { hash: string; size: number; mtimeMs: number }>;
}

/** Identity of what the files are: a cache written for another revision or bucket is not reused. */
export function sourceKey(c: ModelFetchConfig): string {
  if (c.source === 'hub') return `hub ${c.hubEndpoint.replace(/\/+$/, '')}/${c.repo}@${c.revision}`;
  if (c.source === 's3') return `s3 ${c.s3Endpoint.replace(/\/+$/, '')}/${c.s3Bucket}/${c.s3Prefix}`;
  return 'volume';
}

/** Config problems no transfer can fix, each naming its variable. */
export function checkConfig(c: ModelFetchConfig): string[] {
  const p: string[] = [];
  if (!c.files.length) p.push('MODEL_FILES lists no file');
  if (c.source === 'hub') {
    if (!c.repo) p.push('MODEL_REPO is required for MODEL_SOURCE=hub');
    if (!/^[0-9a-f]{40}$/.test(c.revision)) p.push(`MODEL_REVISION=${JSON.stringify(c.revision)}: must be a pinned 40-hex commit hash`);
  }
  if (c.source === 's3') {
    if (!c.s3Endpoint) p.push('MODEL_S3_ENDPOINT is required for MODEL_SOURCE=s3');
    if (!c.s3Bucket) p.push('MODEL_S3_BUCKET is required for MODEL_SOURCE=s3');
    if (!c.s3AccessKeyId !== !c.s3SecretAccessKey) p.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together');
  }
  if (c.source === 'volume') {
    for (const f of c.files) if (!f.sha256) p.push(`MODEL_FILES ${f.path}: a pre-filled volume needs the sha256 from the lock file`);
  }
  return p;
}

export async function hashFile(path: string, algorithm: ExpectedHash['algorithm']): Promise<string> {
  const h = createHash(algorithm === 'md5' ? 'md5' : algorithm === 'git-sha1' ? 'sha1' : 'sha256');
  if (algorithm === 'git-sha1') h.update(`blob ${statSync(path).size}\0`);
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

const label = (h: ExpectedHash) => `${h.algorithm}:${h.hex}`;

export class ModelFetcher {
  private readonly marker: Marker | undefined;
  private readonly partialRoot: string;

  constructor(
    private readonly c: ModelFetchConfig,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.partialRoot = join(c.modelDir, '.partial', c.podName.replace(/[^A-Za-z0-9._-]/g, '_'));
    this.marker = this.readMarker();
  }

  /** Delivers every file or throws a ModelFetchError naming the first that failed. */
  async run(): Promise<FetchReport[]> {
    const problems = checkConfig(this.c);
    if (problems.length) throw new ModelFetchError('config', problems.join('; '));
    const reports: FetchReport[] = [];
    for (const f of this.c.files) reports.push(await this.deliver(f));
    if (this.c.source !== 'volume') {
      const files: Marker['files'] = {};
      for (const r of reports) {
        const st = statSync(join(this.c.modelDir, r.file));
        files[r.file] = { hash: r.hash, size: st.size, mtimeMs: st.mtimeMs };
      }
      // Written last, atomically: its presence means every listed file was verified.
      const tmp = join(this.c.modelDir, `${VERIFIED_MARKER}.${process.pid}`);
      writeFileSync(tmp, `${JSON.stringify({ source: sourceKey(this.c), files } satisfies Marker, null, 2)}\n`);
      renameSync(tmp, join(this.c.modelDir, VERIFIED_MARKER));
      rmSync(this.partialRoot, { recursive: true, force: true });
      // Other pods sharing the volume may still be downloading: only an empty .partial goes.
      try {
        rmdirSync(dirname(this.partialRoot));
      } catch {
        /* not empty or gone */
      }
    }
    return reports;
  }

  private readMarker(): Marker | undefined {
    try {
      const m = JSON.parse(readFileSync(join(this.c.modelDir, VERIFIED_MARKER), 'utf8')) as Marker;
      return m.source === sourceKey(this.c) ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /** A file the marker vouches for, unchanged since (size, mtime) and with the hash now expected. */
  private cached(f: ModelFileSpec): FetchReport | undefined {
    const entry = this.marker?.files[destinationOf(f)];
    const path = join(this.c.modelDir, destinationOf(f));
    if (!entry || !existsSync(path)) return undefined;
    if (f.sha256 && entry.hash !== `sha256:${f.sha256}`) return undefined;
    const st = statSync(path);
    if (st.size !== entry.size || st.mtimeMs !== entry.mtimeMs) return undefined;
    return { file: destinationOf(f), outcome: 'cached', bytes: st.size, resumedFrom: 0, attempts: 0, hash: entry.hash };
  }

  private async deliver(f: ModelFileSpec): Promise<FetchReport> {
    const hit = this.cached(f);
    if (hit) {
      this.log(`${f.path}: cached (${hit.hash}, ${hit.bytes} bytes)`);
      return hit;
    }
    if (this.c.source === 'volume') return this.verifyInPlace(f);
    const { url, expected, size } = await this.locate(f);
    const partial = join(this.partialRoot, destinationOf(f));
    mkdirSync(dirname(partial), { recursive: true });
    const { resumedFrom, attempts } = await this.download(f.path, url, partial, size);
    const got = await hashFile(partial, expected.algorithm);
    if (got !== expected.hex) {
      rmSync(partial, { force: true });
      throw new ModelFetchError(
        f.path,
        `${expected.algorithm} mismatch: expected ${expected.hex} (${expected.from}), got ${got}; the download was deleted`,
      );
    }
    const bytes = statSync(partial).size;
    if (size !== undefined && bytes !== size)
      throw new ModelFetchError(f.path, `size ${bytes} differs from the ${size} bytes the source announced`);
    const dest = join(this.c.modelDir, destinationOf(f));
    mkdirSync(dirname(dest), { recursive: true });
    renameSync(partial, dest);
    this.log(
      `${f.path}: fetched ${bytes} bytes${resumedFrom ? ` (resumed from byte ${resumedFrom})` : ''}, ${label(expected)} verified against the ${expected.from}`,
    );
    return { file: destinationOf(f), outcome: 'fetched', bytes, resumedFrom, attempts, hash: label(expected) };
  }

  private async verifyInPlace(f: ModelFileSpec): Promise<FetchReport> {
    const path = join(this.c.modelDir, destinationOf(f));
    if (!existsSync(path)) throw new ModelFetchError(f.path, `missing from the pre-filled volume (${path})`);
    const got = await hashFile(path, 'sha256');
    if (got !== f.sha256) throw new ModelFetchError(f.path, `sha256 mismatch: expected ${f.sha256} (lock file), got ${got}`);
    this.log(`${f.path}: verified in place (sha256:${got})`);
    return { file: destinationOf(f), outcome: 'verified', bytes: statSync(path).size, resumedFrom: 0, attempts: 0, hash: `sha256:${got}` };
  }

  private request(url: URL, method: 'GET' | 'HEAD', headers: Record<string, string> = {}, maxRedirects?: number): Promise<HttpResponse> {
    const c = this.c;
    const r: HttpRequest = {
      url,
      method,
      headers,
      maxRedirects,
      idleTimeoutMs: c.timeoutMs,
      proxy: c.proxy ? new URL(c.proxy) : undefined,
      originHeaders: c.source === 'hub' && c.hubToken ? { authorization: `Bearer ${c.hubToken}` } : undefined,
      sign:
        c.source === 's3' && c.s3AccessKeyId
          ? (u, h) =>
              u.origin === url.origin
                ? signS3(method, u, h, { accessKeyId: c.s3AccessKeyId, secretAccessKey: c.s3SecretAccessKey, region: c.s3Region })
                : h
          : undefined,
    };
    return httpRequest(r);
  }

  /** The file's URL, the hash it must have (lock first, else the source's own) and its size if announced. */
  private async locate(f: ModelFileSpec): Promise<{ url: URL; expected: ExpectedHash; size?: number }> {
    const c = this.c;
    const url =
      c.source === 'hub'
        ? hubFileUrl(c.hubEndpoint, c.repo, c.revision, f.path)
        : s3ObjectUrl(c.s3Endpoint, c.s3Bucket, c.s3Prefix, f.path);
    const lock: ExpectedHash | undefined = f.sha256 ? { algorithm: 'sha256', hex: f.sha256, from: 'lock file' } : undefined;
    let head: HttpResponse;
    try {
      head = await this.request(url, 'HEAD', {}, c.source === 'hub' ? 0 : undefined);
    } catch (err) {
      if (lock) return { url, expected: lock }; // the lock is enough; the GET will say what is wrong
      throw new ModelFetchError(f.path, `HEAD ${url.href} failed: ${(err as Error).message}`);
    }
    head.body.resume();
    this.checkStatus(f.path, url, head.status, 'HEAD');
    const h = head.headers;
    const own = c.source === 'hub' ? hubHash(h) : s3Hash(h);
    const expected = lock ?? own;
    if (!expected)
      throw new ModelFetchError(
        f.path,
        `no sha256 in the lock file and the source sent no content hash (ETag ${JSON.stringify(h.etag ?? null)}): add it to the lock`,
      );
    const sizeHeader = h['x-linked-size'] ?? (head.status === 200 ? h['content-length'] : undefined);
    const size = sizeHeader !== undefined && /^\d+$/.test(String(sizeHeader)) ? Number(sizeHeader) : undefined;
    return { url, expected, size };
  }

  private checkStatus(file: string, url: URL, status: number, method: string): void {
    if (status === 404) throw new ModelFetchError(file, `not found (404 on ${method} ${url.href})`);
    if (status === 401 || status === 403) {
      const cred =
        this.c.source === 'hub'
          ? this.c.hubToken
            ? 'the token in MODEL_HUB_TOKEN was rejected'
            : 'MODEL_HUB_TOKEN is empty'
          : this.c.s3AccessKeyId
            ? 'the S3 keys were rejected'
            : 'no S3 keys are set';
      throw new ModelFetchError(file, `access denied (${status} on ${method} ${url.href}): ${cred}`);
    }
    if (status >= 500) throw new TransientError(`${status} from ${url.host}`);
    if (status >= 300 && status < 400 && method === 'HEAD') return;
    if (status !== 200 && status !== 206) throw new ModelFetchError(file, `unexpected ${status} on ${method} ${url.href}`);
  }

  /** GETs into `partial`, resuming from its length with Range; retries cut transfers and 5xx. */
  private async download(file: string, url: URL, partial: string, size?: number): Promise<{ resumedFrom: number; attempts: number }> {
    let firstOffset = -1;
    let last = '';
    for (let attempt = 1; attempt <= this.c.retries; attempt++) {
      let have = existsSync(partial) ? statSync(partial).size : 0;
      if (size !== undefined && have > size) {
        truncateSync(partial, 0);
        have = 0;
      }
      if (firstOffset < 0) firstOffset = have;
      if (size !== undefined && have === size) return { resumedFrom: firstOffset, attempts: attempt - 1 };
      try {
        await this.transfer(file, url, partial, have);
        return { resumedFrom: firstOffset, attempts: attempt };
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        last = err.message;
        const at = existsSync(partial) ? statSync(partial).size : 0;
        this.log(`${file}: attempt ${attempt}/${this.c.retries} interrupted (${last}); resuming from byte ${at}`);
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5000)));
      }
    }
    throw new ModelFetchError(file, `transfer interrupted ${this.c.retries} times; last: ${last}`);
  }

  private async transfer(file: string, url: URL, partial: string, have: number): Promise<void> {
    let res: HttpResponse;
    try {
      res = await this.request(url, 'GET', have > 0 ? { range: `bytes=${have}-` } : {});
    } catch (err) {
      throw new TransientError((err as Error).message);
    }
    if (res.status === 416 && have > 0) {
      // The partial is longer than the file or unusable: start over.
      res.body.resume();
      truncateSync(partial, 0);
      throw new TransientError('range not satisfiable; restarting the file');
    }
    try {
      this.checkStatus(file, url, res.status, 'GET');
    } catch (err) {
      res.body.resume();
      throw err;
    }
    const start = res.status === 206 ? Number(/^bytes (\d+)-/.exec(String(res.headers['content-range']))?.[1] ?? NaN) : 0;
    if (res.status === 206 && start !== have) {
      res.body.destroy();
      truncateSync(partial, 0);
      throw new TransientError(`server resumed at byte ${start}, not ${have}; restarting the file`);
    }
    const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
    const out = createWriteStream(partial, { flags: res.status === 206 ? 'a' : 'w' });
    let received = 0;
    res.body.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    // Not pipeline(): it destroys the file stream on a cut, dropping bytes already received that a resume needs.
    res.body.pipe(out, { end: false });
    let cut: Error | undefined;
    await finished(res.body).catch((err: Error) => {
      cut = err;
    });
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (cut) throw new TransientError(`transfer cut after ${received} bytes: ${cut.message}`);
    if (length !== undefined && received < length) throw new TransientError(`transfer cut after ${received} of ${length} bytes`);
  }
}
