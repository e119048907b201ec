/** Env of the vault-backup CronJob's upload step: where snapshots go when they leave the cluster. */
import { str } from './env';

export const BACKUP_UPLOAD_ENV = {
  dir: str('BACKUP_DIR', { doc: 'Directory the snapshot step wrote vault-<stamp>.rdb into (the newest is uploaded)', default: '/backup' }),
  endpoint: {
    ...str('BACKUP_S3_ENDPOINT', { doc: 'S3-compatible endpoint, http(s)://host[:port] (path-style requests)' }),
    parse: (raw: string) => {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        throw new Error('must be an http(s)://host[:port] URL');
      }
      if (!['http:', 'https:'].includes(u.protocol)) throw new Error('must be an http(s)://host[:port] URL');
      return raw.replace(/\/+$/, '');
    },
  },
  bucket: str('BACKUP_S3_BUCKET', { doc: 'Bucket the snapshots are written to' }),
  prefix: str('BACKUP_S3_PREFIX', { doc: 'Key prefix inside the bucket (e.g. prod/vault/)', default: '' }),
  region: str('BACKUP_S3_REGION', { doc: 'Signing region (SigV4)', default: 'us-east-1' }),
  accessKeyId: str('BACKUP_S3_ACCESS_KEY_ID', { doc: 'Access key id (from a Secret)', secret: true }),
  secretAccessKey: str('BACKUP_S3_SECRET_ACCESS_KEY', { doc: 'Secret access key (from a Secret)', secret: true }),
} as const;
