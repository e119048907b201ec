/** OrbCore: the stateless gateway — Deployment `orb-core` (container `orb-field`), Service, Ingress, HPA, PDB. */
import { COMPONENTS, PUBLIC_API_PREFIX, WEB_CLIENT_FILES } from '../services/contract';
import { Construct } from 'constructs';
import { ORB_ENV } from '../services/config/orb';
import { componentLabels, selectorLabels } from './labels';
import { k8s } from './k8s';
import { HTTP_PORT, HTTP_PORT_NAME, hardenedPodSpec, httpProbes, type ResourceSpec } from './hardened-pod';
import { mergeEnv, renderEnv, vaultEnv, type EnvBinding, type SecretKeyRef, type VaultEndpoint } from './service-env';
import {
  budgetFor,
  checkReplicaRange,
  podAnnotations,
  podDisruptionBudget,
  workloadAnnotations,
  workloadServiceAccount,
  type ReplicaRange,
  type WorkloadProps,
  serviceContainer,
  namesOf,
} from './workload-support';
import { exemptionAnnotations, type ExemptableRule } from './policy-exemptions';

export const ORB_CORE: string = COMPONENTS.orbCore;
export const ORB_CORE_CONTAINER = 'orb-field';

export interface OrbCoreIngressProps {
  /** Public host name clients connect to. */
  readonly host: string;
  /** @default 'nginx' */
  readonly className?: string;
  /**
   * Secret holding the TLS certificate for `host`.
   * @default - no TLS (dev only; POLICY N4)
   */
  readonly tlsSecretName?: string;
  /**
   * Proxy read/send timeout: a WebSocket idle longer than this is cut by ingress-nginx.
   * @default 3600
   */
  readonly timeoutSeconds?: number;
  /**
   * Proxies between the client and orb-core, counting this Ingress, whose X-Forwarded-For entries
   * orb-core believes (ORB_TRUST_PROXY_HOPS); entries a client wrote itself are never used.
   * @default 1
   */
  readonly proxyHops?: number;
  /** Rules exempted on the Ingress. @default - none */
  readonly policyExemptions?: readonly ExemptableRule[];
}

export interface OrbCoreProps extends WorkloadProps {
  /**
   * Fixed replica count; ignored (left unset) when `autoscaling` is set.
   * @default 3
   */
  readonly replicas?: number;
  /**
   * HPA on CPU; the Deployment's replicas are then left to the HPA.
   * @default - fixed replicas
   */
  readonly autoscaling?: ReplicaRange & { readonly targetCpuUtilization?: number };
  readonly resources: ResourceSpec;
  readonly vault: VaultEndpoint;
  /**
   * Settings of ORB_ENV (non-secret) to render; the rest keep the service defaults.
   * @default - service defaults
   */
  readonly settings?: EnvBinding<typeof ORB_ENV>['values'];
  /**
   * Where ORB_API_KEYS comes from.
   * @default - Secret `<prefix>orb-api-keys`, key `keys`
   */
  readonly apiKeys?: SecretKeyRef;
  /**
   * Pods a voluntary disruption must leave running.
   * @default 2
   */
  readonly minAvailable?: number;
  /** @default - no Ingress */
  readonly ingress?: OrbCoreIngressProps;
}

export class OrbCore extends Construct {
  public readonly deployment: k8s.KubeDeployment;
  public readonly service: k8s.KubeService;
  public readonly ingress?: k8s.KubeIngress;
  public readonly autoscaler?: k8s.KubeHorizontalPodAutoscalerV2;

  constructor(scope: Construct, id: string, props: OrbCoreProps) {
    super(scope, id);
    const replicas = props.replicas ?? 3;
    if (props.autoscaling) checkReplicaRange('autoscaling', props.autoscaling);
    else if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`'replicas' (${replicas}) must be an integer >= 1`);
    const hops = props.ingress?.proxyHops;
    if (hops !== undefined && (!Number.isInteger(hops) || hops < 1 || hops > 8))
      throw new Error(`'ingress.proxyHops' (${hops}) must be an integer from 1 to 8`);
    const floor = props.autoscaling?.minReplicas ?? replicas;
    const budget = budgetFor(floor, floor > 1 ? (props.minAvailable ?? 2) : undefined, 'minAvailable');

    const name = namesOf(props).component.orbCore;
    const labels = componentLabels({ name, component: 'gateway', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    const env = mergeEnv(
      renderEnv(ORB_ENV, {
        // Behind the Ingress the client address is the one its hops appended; without one, no header is believed.
        values: { ...(props.ingress ? { trustProxyHops: props.ingress.proxyHops ?? 1 } : {}), ...props.settings, port: HTTP_PORT },
        secrets: { apiKeys: props.apiKeys ?? { secret: namesOf(props).apiKeysSecret, key: 'keys' } },
        fieldRefs: { podName: 'metadata.name' },
      }),
      vaultEnv(props.vault, 'orb'),
    );
    const probes = httpProbes();
    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        replicas: props.autoscaling ? undefined : replicas,
        selector: { matchLabels: selectorLabels(name) },
        // Surge first: a WebSocket gateway must never dip below its replica count during a rollout.
        strategy: {
          type: 'RollingUpdate',
          rollingUpdate: { maxSurge: k8s.IntOrString.fromString('25%'), maxUnavailable: k8s.IntOrString.fromNumber(0) },
        },
        template: {
          metadata: { labels, annotations: podAnnotations(props) },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            // Contract: 45 s grace covers the 5 s preStop plus the gateway's drain of in-flight turns.
            terminationGracePeriodSeconds: 45,
            containers: [
              serviceContainer(props, {
                name: ORB_CORE_CONTAINER,
                command: ['node', 'build/services/orb/main.js'],
                env,
                resources: props.resources,
                probes,
                // Endpoints controllers need a moment to drop the pod before it starts draining.
                lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
              }),
            ],
          }),
        },
      },
    });

    this.service = new k8s.KubeService(this, 'service', {
      metadata: { name, labels },
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels(name),
        ports: [{ name: HTTP_PORT_NAME, port: HTTP_PORT, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' }],
      },
    });

    if (props.autoscaling) {
      this.autoscaler = new k8s.KubeHorizontalPodAutoscalerV2(this, 'autoscaler', {
        metadata: { name, labels },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
          minReplicas: props.autoscaling.minReplicas,
          maxReplicas: props.autoscaling.maxReplicas,
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: props.autoscaling.targetCpuUtilization ?? 70 } },
            },
          ],
        },
      });
    }

    podDisruptionBudget(this, name, labels, budget);

    if (props.ingress) {
      const ing = props.ingress;
      const timeout = String(ing.timeoutSeconds ?? 3600);
      this.ingress = new k8s.KubeIngress(this, 'ingress', {
        metadata: {
          name,
          labels,
          annotations: {
            // WebSockets live for a whole conversation: nginx's 60 s default would cut idle ones.
            'nginx.ingress.kubernetes.io/proxy-read-timeout': timeout,
            'nginx.ingress.kubernetes.io/proxy-send-timeout': timeout,
            ...(ing.tlsSecretName ? { 'nginx.ingress.kubernetes.io/ssl-redirect': 'true' } : {}),
            ...exemptionAnnotations(ing.policyExemptions ?? []),
          },
        },
        spec: {
          ingressClassName: ing.className ?? 'nginx',
          tls: ing.tlsSecretName ? [{ hosts: [ing.host], secretName: ing.tlsSecretName }] : undefined,
          rules: [
            {
              host: ing.host,
              http: {
                // Client paths only: metrics and probes answer on the same port and must stay in-cluster.
                paths: publicPaths().map(({ path, pathType }) => ({
                  path,
                  pathType,
                  backend: { service: { name, port: { name: HTTP_PORT_NAME } } },
                })),
              },
            },
          ],
        },
      });
    }
  }
}

/** The paths the public Ingress routes: the client API prefix, `/` and each web client file. */
export function publicPaths(): Array<{ path: string; pathType: 'Prefix' | 'Exact' }> {
  return [
    { path: PUBLIC_API_PREFIX, pathType: 'Prefix' },
    { path: '/', pathType: 'Exact' },
    ...WEB_CLIENT_FILES.map((f) => ({ path: `/${f}`, pathType: 'Exact' as const })),
  ];
}
