/**
 * VaultBackup: CronJob `vault-backup` — BGSAVE, stream the snapshot to a backup PVC, keep the newest
 * N; with `offsite`, an upload step (app image) then copies it to an S3-compatible bucket.
 */
import { COMPONENTS } from '../services/contract';
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, type ResourceSpec } from './hardened-pod';
import { BACKUP_UPLOAD_ENV } from '../services/config/backup';
import { renderEnv, vaultEnv, type VaultEndpoint } from './service-env';
import { workloadAnnotations, workloadServiceAccount, type WorkloadProps, namesOf } from './workload-support';

export const VAULT_BACKUP: string = COMPONENTS.vaultBackup;

export interface VaultBackupProps extends WorkloadProps {
  readonly vault: VaultEndpoint;
  /** Cron schedule. @default '17 * * * *' (hourly, off the hour) */
  readonly schedule?: string;
  /** Snapshots kept on the backup PVC. @default 24 */
  readonly keep?: number;
  /** Size of the backup PVC. */
  readonly storage: string;
  /** @default - the cluster's default StorageClass */
  readonly storageClassName?: string;
  readonly resources: ResourceSpec;
  /** A run that has not finished in this time is killed. @default 1800 */
  readonly activeDeadlineSeconds?: number;
  /** Copy each snapshot off the cluster. @default - snapshots stay on the backup PVC only */
  readonly offsite?: OffsiteBackupProps;
}

/** An S3-compatible bucket the snapshots are copied to (path-style requests, SigV4). */
export interface OffsiteBackupProps {
  /** http(s)://host[:port] of the store. */
  readonly endpoint: string;
  readonly bucket: string;
  /** Key prefix, e.g. `prod/vault/`. @default '' */
  readonly prefix?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Secret and keys holding the access key id and secret access key (never in dist/). */
  readonly credentialsSecret: { readonly secret: string; readonly accessKeyIdKey: string; readonly secretAccessKeyKey: string };
  /** The image of the upload step: the app image (node + build/services/vault-backup/upload.js). */
  readonly image: string;
}

/**
 * POSIX sh the Job runs (redis image): BGSAVE so the vault's own RDB is fresh, wait for it, then
 * `redis-cli --rdb` copies a consistent snapshot over the network (the vault's RWO volume is not
 * mountable here), and prunes all but the newest $KEEP.
 */
export const BACKUP_SCRIPT = `#!/bin/sh
set -eu
: "\${REDIS_HOST:?}" "\${REDIS_PORT:?}" "\${REDIS_USERNAME:?}" "\${BACKUP_DIR:?}" "\${KEEP:?}"
export REDISCLI_AUTH="\${REDIS_PASSWORD:-}"
# Under Sentinel: snapshot the current primary (what the system has acknowledged).
if [ -n "\${REDIS_SENTINELS:-}" ]; then
  primary=''
  for s in $(echo "$REDIS_SENTINELS" | tr ',' ' '); do
    primary=$(redis-cli --no-auth-warning --raw -h "\${s%:*}" -p "\${s##*:}" --user "$REDIS_USERNAME" SENTINEL get-master-addr-by-name "\${REDIS_SENTINEL_MASTER:?}" 2>/dev/null | head -n 1) || primary=''
    [ -n "$primary" ] && break
  done
  [ -n "$primary" ] || { echo "vault-backup: no Sentinel in $REDIS_SENTINELS named the primary" >&2; exit 1; }
  REDIS_HOST=$primary
fi
cli() { redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USERNAME" "$@"; }
cli BGSAVE SCHEDULE >/dev/null
# Wait on INFO, not LASTSAVE: LASTSAVE counts whole seconds, so a save finishing in the same second
# as the previous one never looks new and the loop would spin until the Job's deadline.
while cli INFO persistence | grep -q '^rdb_bgsave_in_progress:1'; do sleep 1; done
cli INFO persistence | grep -q '^rdb_last_bgsave_status:ok' || { echo "vault-backup: BGSAVE failed (see the vault's log)" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
cli --rdb "$BACKUP_DIR/vault-$stamp.rdb.partial" >/dev/null
[ -s "$BACKUP_DIR/vault-$stamp.rdb.partial" ] || { echo "vault-backup: empty snapshot" >&2; exit 1; }
mv "$BACKUP_DIR/vault-$stamp.rdb.partial" "$BACKUP_DIR/vault-$stamp.rdb"
ls -1 "$BACKUP_DIR"/vault-*.rdb | sort -r | tail -n +$((KEEP + 1)) | while read -r old; do rm -f -- "$old"; done
echo "vault-backup: wrote vault-$stamp.rdb; kept $(ls -1 "$BACKUP_DIR"/vault-*.rdb | wc -l)"
`;

export class VaultBackup extends Construct {
  public readonly cronJob: k8s.KubeCronJob;

  constructor(scope: Construct, id: string, props: VaultBackupProps) {
    super(scope, id);
    const name = namesOf(props).component.vaultBackup;
    const keep = props.keep ?? 24;
    if (!Number.isInteger(keep) || keep < 1) throw new Error(`'keep' (${keep}) must be an integer >= 1`);
    const activeDeadlineSeconds = props.activeDeadlineSeconds ?? 1800;
    const labels = componentLabels({ name, component: 'backup', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    new k8s.KubeConfigMap(this, 'script', { metadata: { name: `${name}-script`, labels }, data: { 'backup.sh': BACKUP_SCRIPT } });
    new k8s.KubePersistentVolumeClaim(this, 'storage', {
      metadata: { name, labels },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: props.storageClassName,
        resources: { requests: { storage: k8s.Quantity.fromString(props.storage) } },
      },
    });

    const snapshot = hardenedContainer({
      name: 'backup',
      image: props.image,
      imagePullPolicy: props.imagePullPolicy ?? 'Always',
      command: ['sh', '/scripts/backup.sh'],
      env: [...vaultEnv(props.vault, 'backup'), { name: 'BACKUP_DIR', value: '/backup' }, { name: 'KEEP', value: String(keep) }],
      resources: props.resources,
      volumeMounts: [
        { name: 'script', mountPath: '/scripts', readOnly: true },
        { name: 'backup', mountPath: '/backup' },
      ],
    });
    if (props.offsite && !/^https?:\/\/[^/]+\/?$/.test(props.offsite.endpoint)) {
      throw new Error(`'offsite.endpoint' (${props.offsite.endpoint}) must be http(s)://host[:port]`);
    }

    this.cronJob = new k8s.KubeCronJob(this, 'cron-job', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        schedule: props.schedule ?? '17 * * * *',
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: 600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels },
          spec: {
            backoffLimit: 2,
            activeDeadlineSeconds,
            ttlSecondsAfterFinished: 86400,
            template: {
              metadata: { labels },
              spec: hardenedPodSpec({
                app: name,
                serviceAccountName: sa.name,
                priorityClassName: props.priorityClassName,
                restartPolicy: 'OnFailure',
                hostSpread: 'none',
                initContainers: props.offsite ? [snapshot] : undefined,
                containers: props.offsite ? [uploadContainer(props.offsite, props)] : [snapshot],
                volumes: [
                  { name: 'script', configMap: { name: `${name}-script` } },
                  { name: 'backup', persistentVolumeClaim: { claimName: name } },
                ],
              }),
            },
          },
        },
      },
    });
  }
}

/** The upload step: the newest snapshot on the PVC to the bucket, checked (services/vault-backup/upload.ts). */
function uploadContainer(o: OffsiteBackupProps, props: VaultBackupProps): k8s.Container {
  return hardenedContainer({
    name: 'upload',
    image: o.image,
    imagePullPolicy: props.imagePullPolicy ?? 'Always',
    command: ['node', 'build/services/vault-backup/upload.js'],
    env: renderEnv(BACKUP_UPLOAD_ENV, {
      values: { dir: '/backup', endpoint: o.endpoint, bucket: o.bucket, prefix: o.prefix ?? '', region: o.region ?? 'us-east-1' },
      secrets: {
        accessKeyId: { secret: o.credentialsSecret.secret, key: o.credentialsSecret.accessKeyIdKey },
        secretAccessKey: { secret: o.credentialsSecret.secret, key: o.credentialsSecret.secretAccessKeyKey },
      },
    }),
    resources: props.resources,
    volumeMounts: [{ name: 'backup', mountPath: '/backup', readOnly: true }],
  });
}
