/**
 * Upload step of the vault-backup CronJob (app image; the redis image has no S3 client): sends
 * the snapshot the previous step wrote to an S3-compatible bucket with SigV4 (the signer
 * model-fetch uses), and checks it end to end:
 * - Content-MD5 and the signed x-amz-content-sha256: the store rejects a body that changed on the way;
 * - after the PUT, HEAD must report the size and the MD5 ETag we computed;
 * - `<key>.sha256` next to it holds the SHA-256 a restore checks the download against
 *   (`downloadSnapshot`, which buffers the object: restore hosts have the memory the vault has).
 * Single PUT: objects up to 5 GiB (S3's limit; multipart is not implemented).
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { loadEnv, type EnvValues } from '../config/env';
import { BACKUP_UPLOAD_ENV } from '../config/backup';
import { s3ObjectUrl, signS3 } from '../model-fetch/sources';

export type UploadConfig = EnvValues<typeof BACKUP_UPLOAD_ENV>;

export interface UploadResult {
  readonly key: string;
  readonly bytes: number;
  readonly md5: string;
  readonly sha256: string;
}

const SINGLE_PUT_LIMIT = 5 * 1024 ** 3;

/** The newest vault-<stamp>.rdb in `dir` (stamps sort as time). */
export function newestSnapshot(dir: string): string {
  const names = readdirSync(dir)
    .filter((n) => /^vault-\d{8}T\d{6}Z\.rdb$/.test(n))
    .sort();
  if (!names.length) throw new Error(`no vault-<stamp>.rdb in ${dir}`);
  return join(dir, names[names.length - 1]);
}

async function digests(path: string): Promise<{ md5: Buffer; sha256: string }> {
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    md5.update(chunk as Buffer);
    sha.update(chunk as Buffer);
  }
  return { md5: md5.digest(), sha256: sha.digest('hex') };
}

function send(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: Readable | Buffer,
): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (text.length < 4096) text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', reject);
      body.pipe(req);
    }
  });
}

/** Uploads `path` as `<prefix><name>` plus `<prefix><name>.sha256`; throws unless both check out. */
export async function uploadSnapshot(cfg: UploadConfig, path: string, now = new Date()): Promise<UploadResult> {
  const bytes = statSync(path).size;
  if (bytes === 0) throw new Error(`${path} is empty`);
  if (bytes > SINGLE_PUT_LIMIT)
    throw new Error(`${path} is ${bytes} bytes: above the 5 GiB single-PUT limit (multipart is not implemented)`);
  const { md5, sha256 } = await digests(path);
  const creds = { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey, region: cfg.region };
  const name = basename(path);
  const url = s3ObjectUrl(cfg.endpoint, cfg.bucket, cfg.prefix, name);
  const key = decodeURIComponent(url.pathname.split('/').slice(2).join('/'));
  const put = async (target: URL, body: Readable | Buffer, length: number, bodyMd5: Buffer, bodySha: string, type: string) => {
    const headers = signS3(
      'PUT',
      target,
      { 'content-length': String(length), 'content-md5': bodyMd5.toString('base64'), 'content-type': type },
      creds,
      now,
      bodySha,
    );
    const res = await send('PUT', target, headers, body);
    if (res.status !== 200) throw new Error(`PUT ${target.pathname}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  };
  await put(url, createReadStream(path), bytes, md5, sha256, 'application/octet-stream');
  const head = await send('HEAD', url, signS3('HEAD', url, {}, creds, now));
  const etag = String(head.headers.etag ?? '').replace(/"/g, '');
  if (head.status !== 200) throw new Error(`HEAD ${url.pathname}: HTTP ${head.status}`);
  if (Number(head.headers['content-length']) !== bytes)
    throw new Error(`HEAD ${url.pathname}: ${head.headers['content-length']} bytes stored, ${bytes} sent`);
  if (etag !== md5.toString('hex'))
    throw new Error(`HEAD ${url.pathname}: ETag ${etag} is not the MD5 ${md5.toString('hex')} of the snapshot`);
  const sumUrl = s3ObjectUrl(cfg.endpoint, cfg.bucket, cfg.prefix, `${name}.sha256`);
  const line = Buffer.from(`${sha256}  ${name}\n`);
  await put(
    sumUrl,
    line,
    line.length,
    createHash('md5').update(line).digest(),
    createHash('sha256').update(line).digest('hex'),
    'text/plain',
  );
  return { key, bytes, md5: md5.toString('hex'), sha256 };
}

/**
 * Fetches `<prefix><name>` into `dest` and checks it against `<name>.sha256` (the restore's
 * first step); throws, leaving no file, when the bytes do not match.
 */
export async function downloadSnapshot(cfg: UploadConfig, name: string, dest: string): Promise<{ bytes: number; sha256: string }> {
  const creds = { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey, region: cfg.region };
  const fetchText = async (u: URL) => {
    const res = await fetch(u, { headers: signS3('GET', u, {}, creds) });
    if (res.status !== 200) throw new Error(`GET ${u.pathname}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const expected = (await fetchText(s3ObjectUrl(cfg.endpoint, cfg.bucket, cfg.prefix, `${name}.sha256`))).toString().split(/\s+/)[0];
  const body = await fetchText(s3ObjectUrl(cfg.endpoint, cfg.bucket, cfg.prefix, name));
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (sha256 !== expected) throw new Error(`${name}: SHA-256 ${sha256} of the download is not the recorded ${expected}`);
  writeFileSync(`${dest}.partial`, body);
  renameSync(`${dest}.partial`, dest);
  return { bytes: body.length, sha256 };
}

/** `upload` (default): the newest snapshot in BACKUP_DIR; `download NAME DEST`: fetch and verify one. */
async function main(argv: string[]): Promise<void> {
  const cfg = loadEnv(BACKUP_UPLOAD_ENV);
  if (argv[0] === 'download') {
    if (argv.length !== 3) throw new Error('usage: upload.js download NAME DEST');
    const r = await downloadSnapshot(cfg, argv[1], argv[2]);
    process.stdout.write(`${JSON.stringify({ msg: 'vault-backup: downloaded and verified', name: argv[1], ...r })}\n`);
    return;
  }
  const r = await uploadSnapshot(cfg, newestSnapshot(cfg.dir));
  process.stdout.write(`${JSON.stringify({ msg: 'vault-backup: uploaded', bucket: cfg.bucket, ...r })}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`vault-backup upload failed: ${err.message}\n`);
    process.exit(1);
  });
}
