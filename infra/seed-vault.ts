/**
 * SeedVault: ConfigMap `seed-vault-identity` (the identity document) + Job `seed-vault` loading it,
 * after its init container `functions` loaded the vault's FUNCTION library (as vault user `functions`).
 */
import { COMPONENTS } from '../services/contract';
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, SMALL_RESOURCES, type ResourceSpec } from './hardened-pod';
import { mergeEnv, renderEnv, SEED_ROLE_ENV, vaultEnv, type VaultEndpoint } from './service-env';
import { workloadAnnotations, workloadServiceAccount, type WorkloadProps, configMapOf, namesOf } from './workload-support';

export const SEED_VAULT: string = COMPONENTS.seedVault;
export const SEED_IDENTITY_CONFIG = 'seed-vault-identity';

/** The identity document replicas read from `identity:seed`. */
export interface IdentityDocument {
  readonly name: string;
  readonly version: string;
  readonly [key: string]: unknown;
}

export interface SeedVaultProps extends WorkloadProps {
  readonly vault: VaultEndpoint;
  /** The identity document (services/seed/identity.json: CaleonGenesis 1.12). */
  readonly identity: IdentityDocument;
  /** @default SMALL_RESOURCES with 128Mi memory */
  readonly resources?: ResourceSpec;
}

export class SeedVault extends Construct {
  public readonly job: k8s.KubeJob;
  public readonly identity: k8s.KubeConfigMap;

  constructor(scope: Construct, id: string, props: SeedVaultProps) {
    super(scope, id);
    const doc = props.identity;
    if (!doc.name) throw new Error(`'identity.name' (${JSON.stringify(doc.name)}) must be set`);
    if (!/^\d+\.\d+(\.\d+)?$/.test(doc.version)) throw new Error(`'identity.version' (${doc.version}) must be a version like 1.12`);
    const names = namesOf(props);
    const name = names.component.seedVault;
    const labels = componentLabels({ name, component: 'seed', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);
    this.identity = new k8s.KubeConfigMap(this, 'identity', {
      metadata: { name: `${names.prefix}${SEED_IDENTITY_CONFIG}`, labels },
      data: { 'identity.json': `${JSON.stringify(doc, null, 2)}\n` },
    });
    this.job = new k8s.KubeJob(this, 'job', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        backoffLimit: 6,
        activeDeadlineSeconds: 600,
        // A finished Job is removed, so re-applying dist/ with a new document creates a fresh one.
        ttlSecondsAfterFinished: 3600,
        template: {
          metadata: { labels },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            restartPolicy: 'OnFailure',
            hostSpread: 'none',
            // The vault's FUNCTION library first, as its own user: services only FCALL it.
            initContainers: [
              hardenedContainer({
                name: 'functions',
                image: props.image,
                imagePullPolicy: props.imagePullPolicy ?? 'Always',
                command: ['node', 'build/services/seed/main.js', 'functions'],
                envFromConfigMap: configMapOf(props),
                env: vaultEnv(props.vault, 'functions'),
                resources: props.resources ?? { ...SMALL_RESOURCES, memory: { request: '96Mi', limit: '192Mi' } },
              }),
            ],
            containers: [
              hardenedContainer({
                name: 'seed',
                image: props.image,
                imagePullPolicy: props.imagePullPolicy ?? 'Always',
                command: ['node', 'build/services/seed/main.js'],
                envFromConfigMap: configMapOf(props),
                env: mergeEnv(
                  renderEnv(SEED_ROLE_ENV, { values: { identityFile: '/etc/seed-vault/identity.json' } }),
                  vaultEnv(props.vault, 'seed'),
                ),
                resources: props.resources ?? { ...SMALL_RESOURCES, memory: { request: '96Mi', limit: '192Mi' } },
                volumeMounts: [{ name: 'identity', mountPath: '/etc/seed-vault', readOnly: true }],
              }),
            ],
            volumes: [{ name: 'identity', configMap: { name: `${names.prefix}${SEED_IDENTITY_CONFIG}` } }],
          }),
        },
      },
    });
  }
}
