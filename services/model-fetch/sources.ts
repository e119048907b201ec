/**
 * Where each model file is fetched from, and which content hash the source itself vouches for:
 *  - hub: `{endpoint}/{repo}/resolve/{revision}/{path}`; the HEAD answer's `X-Linked-Etag` (sha256
 *    of an LFS file) or `ETag` (sha256, or the git blob sha1 of a small file);
 *  - s3: path-style `{endpoint}/{bucket}/{prefix}{path}`, SigV4-signed when keys are given; a
 *    single-part upload's ETag is the md5 of the content.
 */
import { createHash, createHmac } from 'node:crypto';

/** A content hash the delivered bytes must match. `git-sha1` hashes `blob <size>\0` + content. */
export interface ExpectedHash {
  readonly algorithm: 'sha256' | 'git-sha1' | 'md5';
  readonly hex: string;
  /** Where the hash came from, for messages: `lock file`, `hub X-Linked-Etag`… */
  readonly from: string;
}

export function hubFileUrl(endpoint: string, repo: string, revision: string, path: string): URL {
  const base = endpoint.replace(/\/+$/, '');
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return new URL(`${base}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(path)}`);
}

function unquote(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s?.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
}

/** The hash the hub's HEAD headers vouch for, or undefined when they carry none this tool can check. */
export function hubHash(headers: Record<string, string | string[] | undefined>): ExpectedHash | undefined {
  const linked = unquote(headers['x-linked-etag']);
  if (linked && /^[0-9a-f]{64}$/.test(linked)) return { algorithm: 'sha256', hex: linked, from: 'hub X-Linked-Etag' };
  const etag = unquote(headers.etag);
  if (etag && /^[0-9a-f]{64}$/.test(etag)) return { algorithm: 'sha256', hex: etag, from: 'hub ETag' };
  if (etag && /^[0-9a-f]{40}$/.test(etag)) return { algorithm: 'git-sha1', hex: etag, from: 'hub ETag (git blob sha1)' };
  return undefined;
}

/** A single-part S3 upload's ETag is the content md5; multipart ETags (`…-N`) are not content hashes. */
export function s3Hash(headers: Record<string, string | string[] | undefined>): ExpectedHash | undefined {
  const etag = unquote(headers.etag);
  return etag && /^[0-9a-f]{32}$/.test(etag) ? { algorithm: 'md5', hex: etag, from: 'S3 ETag (md5)' } : undefined;
}

export function s3ObjectUrl(endpoint: string, bucket: string, prefix: string, path: string): URL {
  const base = endpoint.replace(/\/+$/, '');
  const key = `${prefix}${prefix && !prefix.endsWith('/') ? '/' : ''}${path}`;
  return new URL(`${base}/${encodeURIComponent(bucket)}/${key.split('/').map(rfc3986).join('/')}`);
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s).digest();

/**
 * AWS Signature Version 4 (header form). Signs host, the x-amz-* headers and Range; the payload
 * hash defaults to UNSIGNED-PAYLOAD, which S3 accepts for GET/HEAD.
 */
export function signS3(
  method: string,
  url: URL,
  headers: Record<string, string>,
  creds: { accessKeyId: string; secretAccessKey: string; region: string },
  now = new Date(),
  payloadHash = 'UNSIGNED-PAYLOAD',
): Record<string, string> {
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const signed: Record<string, string> = { host: url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'range') signed.range = v.trim();
  const names = Object.keys(signed).sort();
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .sort()
    .join('&');
  const canonical = [method, url.pathname, query, ...names.map((n) => `${n}:${signed[n]}`), '', names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), creds.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const { host: _host, ...sent } = signed; // node sets Host itself from the URL
  return {
    ...headers,
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope},SignedHeaders=${names.join(';')},Signature=${signature}`,
  };
}
