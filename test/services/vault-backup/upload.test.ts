/**
 * The vault-backup upload step against s3rver (a local S3 stand-in): a real RDB from a real
 * redis-server goes up with Content-MD5 and a signed SHA-256, is checked by HEAD (size, MD5 ETag),
 * and comes back byte for byte; a download whose SHA-256 differs from the recorded one is refused.
 * s3rver checks the access key id, not the signature math or Content-MD5 (a real store does).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { loadEnv } from '../../../services/config/env';
import { BACKUP_UPLOAD_ENV } from '../../../services/config/backup';
import { s3ObjectUrl, signS3 } from '../../../services/model-fetch/sources';
import { downloadSnapshot, newestSnapshot, uploadSnapshot } from '../../../services/vault-backup/upload';
import { startRedisServer } from '../../../tools/redis/redis-server';

jest.setTimeout(60_000);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' };
let server: { run(): Promise<{ port: number }>; close(): Promise<void> };
let endpoint: string;
let work: string;

function http(method: string, url: URL, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const get = (url: URL) => http('GET', url, signS3('GET', url, {}, CREDS));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vault-upload-'));
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(work, 's3'),
    configureBuckets: [{ name: 'vault-backups', configs: [] }],
  });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

const config = (extra: Record<string, string> = {}) =>
  loadEnv(BACKUP_UPLOAD_ENV, {
    BACKUP_DIR: work,
    BACKUP_S3_ENDPOINT: endpoint,
    BACKUP_S3_BUCKET: 'vault-backups',
    BACKUP_S3_PREFIX: 'test/vault/',
    BACKUP_S3_ACCESS_KEY_ID: 'S3RVER',
    BACKUP_S3_SECRET_ACCESS_KEY: 'S3RVER',
    ...extra,
  });

test('uploads the newest snapshot of a real redis-server, checked by MD5 ETag and a stored SHA-256', async () => {
  const redis = await startRedisServer();
  const c = new Redis(redis.url);
  try {
    const prefix = `upload-test:${process.pid}:`;
    for (let i = 0; i < 200; i++) await c.set(`${prefix}${i}`, randomBytes(64).toString('hex'));
    await c.save();
  } finally {
    c.disconnect();
    await redis.stop();
  }
  const rdb = readFileSync(join(redis.dir, 'dump.rdb'));
  expect(rdb.subarray(0, 5).toString()).toBe('REDIS');
  writeFileSync(join(work, 'vault-20260101T000000Z.rdb'), Buffer.from('REDIS-older'));
  writeFileSync(join(work, 'vault-20260102T000000Z.rdb'), rdb);
  rmSync(redis.dir, { recursive: true, force: true });

  const cfg = config();
  const path = newestSnapshot(cfg.dir);
  expect(path).toBe(join(work, 'vault-20260102T000000Z.rdb'));
  const r = await uploadSnapshot(cfg, path);
  const sha = createHash('sha256').update(rdb).digest('hex');
  expect(r).toEqual({
    key: 'test/vault/vault-20260102T000000Z.rdb',
    bytes: rdb.length,
    md5: createHash('md5').update(rdb).digest('hex'),
    sha256: sha,
  });

  const back = await get(s3ObjectUrl(endpoint, 'vault-backups', 'test/vault/', 'vault-20260102T000000Z.rdb'));
  expect(back.status).toBe(200);
  expect(createHash('sha256').update(back.body).digest('hex')).toBe(sha);
  const sum = await get(s3ObjectUrl(endpoint, 'vault-backups', 'test/vault/', 'vault-20260102T000000Z.rdb.sha256'));
  expect(sum.body.toString()).toBe(`${sha}  vault-20260102T000000Z.rdb\n`);
});

test('download checks the SHA-256: a stored object altered at rest is refused', async () => {
  const rdb = Buffer.concat([Buffer.from('REDIS0010'), randomBytes(4096)]);
  writeFileSync(join(work, 'vault-20260104T000000Z.rdb'), rdb);
  const cfg = config();
  await uploadSnapshot(cfg, join(work, 'vault-20260104T000000Z.rdb'));
  const dest = join(work, 'restored.rdb');
  expect(await downloadSnapshot(cfg, 'vault-20260104T000000Z.rdb', dest)).toEqual({
    bytes: rdb.length,
    sha256: createHash('sha256').update(rdb).digest('hex'),
  });
  expect(readFileSync(dest).equals(rdb)).toBe(true);
  // Flip one byte of the object in s3rver's own storage: the bucket now serves other bytes.
  const dir = join(work, 's3', 'vault-backups', 'test', 'vault');
  const stored = join(
    dir,
    readdirSync(dir).find((f) => f.startsWith('vault-20260104T000000Z.rdb') && f.endsWith('._S3rver_object'))!,
  );
  const bytes = readFileSync(stored);
  bytes[100] ^= 0xff;
  writeFileSync(stored, bytes);
  rmSync(dest);
  await expect(downloadSnapshot(cfg, 'vault-20260104T000000Z.rdb', dest)).rejects.toThrow(
    /SHA-256 [0-9a-f]{64} of the download is not the recorded/,
  );
  expect(existsSync(dest)).toBe(false);
});

test("an unknown access key id fails the upload with the store's answer", async () => {
  writeFileSync(join(work, 'vault-20260103T000000Z.rdb'), Buffer.from('REDIS-x'));
  await expect(uploadSnapshot(config({ BACKUP_S3_ACCESS_KEY_ID: 'NOBODY' }), join(work, 'vault-20260103T000000Z.rdb'))).rejects.toThrow(
    /PUT .*HTTP 403/,
  );
});

test('config: the endpoint must be an http(s) URL; credentials are secret fields', () => {
  expect(() => config({ BACKUP_S3_ENDPOINT: 's3.example.com' })).toThrow(/BACKUP_S3_ENDPOINT.*http\(s\)/);
  expect(BACKUP_UPLOAD_ENV.accessKeyId.secret).toBe(true);
  expect(BACKUP_UPLOAD_ENV.secretAccessKey.secret).toBe(true);
});
