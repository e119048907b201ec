/** VaultBackup: CronJob `vault-backup` — BGSAVE, stream the snapshot to a backup PVC, keep the newest N. */
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, type ResourceSpec } from './hardened-pod';
import { vaultEnv, type VaultEndpoint } from './service-env';
import { workloadAnnotations, workloadServiceAccount, type WorkloadProps } from './workload-support';

export const VAULT_BACKUP = 'vault-backup';

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
    const name = VAULT_BACKUP;
    const keep = props.keep ?? 24;
    if (!Number.isInteger(keep) || keep < 1) throw new Error(`'keep' (${keep}) must be an integer >= 1`);
    const activeDeadlineSeconds = props.activeDeadlineSeconds ?? 1800;
    const labels = componentLabels({ name, component: 'backup', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    new k8s.KubeConfigMap(this, 'script', { metadata: { name: 'vault-backup-script', labels }, data: { 'backup.sh': BACKUP_SCRIPT } });
    new k8s.KubePersistentVolumeClaim(this, 'storage', {
      metadata: { name, labels },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: props.storageClassName,
        resources: { requests: { storage: k8s.Quantity.fromString(props.storage) } },
      },
    });

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
                containers: [hardenedContainer({
                  name: 'backup',
                  image: props.image,
                  imagePullPolicy: props.imagePullPolicy ?? 'Always',
                  command: ['sh', '/scripts/backup.sh'],
                  env: [
                    ...vaultEnv(props.vault, 'backup'),
                    { name: 'BACKUP_DIR', value: '/backup' },
                    { name: 'KEEP', value: String(keep) },
                  ],
                  resources: props.resources,
                  volumeMounts: [
                    { name: 'script', mountPath: '/scripts', readOnly: true },
                    { name: 'backup', mountPath: '/backup' },
                  ],
                })],
                volumes: [
                  { name: 'script', configMap: { name: 'vault-backup-script' } },
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
