/** CoreQuorum: StatefulSet `core4` — five sovereign verdict cores, each ordinal with its own model. */
import { COMPONENTS, DEFAULT_CORES, DEFAULT_QUORUM, quorumProblems } from '../services/contract';
import { Construct } from 'constructs';
import { componentLabels, selectorLabels } from './labels';
import { k8s } from './k8s';
import { HTTP_PORT, HTTP_PORT_NAME, hardenedPodSpec, httpProbes, type ResourceSpec } from './hardened-pod';
import { CORE_ROLE_ENV, mergeEnv, POD_INDEX_FIELD, renderEnv, threadsFor, vaultEnv, type VaultEndpoint } from './service-env';
import {
  podAnnotations,
  podDisruptionBudget,
  workloadAnnotations,
  workloadServiceAccount,
  type WorkloadProps,
  serviceContainer,
  namesOf,
} from './workload-support';

export const CORE_QUORUM: string = COMPONENTS.coreQuorum;

export interface CoreQuorumProps extends WorkloadProps {
  /**
   * Number of verdict cores (pods). Odd, so the "+1" core always breaks a tie.
   * @default 5
   */
  readonly cores?: number;
  /**
   * Verdicts needed for a decision; more than half of `cores`.
   * @default 3
   */
  readonly quorum?: number;
  readonly resources: ResourceSpec;
  readonly vault: VaultEndpoint;
  /**
   * Where the image keeps `core-<ordinal>/` model directories.
   * @default '/app/models/core'
   */
  readonly modelsDir?: string;
  /**
   * Spread cores over distinct nodes as a hard rule (independent failures) or a preference (small dev clusters).
   * @default 'required'
   */
  readonly hostSpread?: 'required' | 'preferred';
}

export class CoreQuorum extends Construct {
  public readonly statefulSet: k8s.KubeStatefulSet;
  public readonly service: k8s.KubeService;
  public readonly cores: number;
  public readonly quorum: number;

  constructor(scope: Construct, id: string, props: CoreQuorumProps) {
    super(scope, id);
    const cores = props.cores ?? DEFAULT_CORES;
    const quorum = props.quorum ?? DEFAULT_QUORUM;
    const problem = quorumProblems(cores, quorum)[0];
    if (problem) throw new Error(`'${problem.field}' (${problem.field === 'cores' ? cores : quorum}) ${problem.message}`);
    this.cores = cores;
    this.quorum = quorum;

    const name = namesOf(props).component.coreQuorum;
    const labels = componentLabels({ name, component: 'verdict-core', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    this.service = new k8s.KubeService(this, 'service', {
      metadata: { name, labels },
      spec: {
        // Headless: each core is addressed as core4-<n>.core4 and the StatefulSet needs it (M5).
        clusterIp: 'None',
        publishNotReadyAddresses: false,
        selector: selectorLabels(name),
        ports: [{ name: HTTP_PORT_NAME, port: HTTP_PORT, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' }],
      },
    });

    const probes = httpProbes();
    const env = mergeEnv(
      renderEnv(CORE_ROLE_ENV, {
        values: {
          port: HTTP_PORT,
          modelsDir: props.modelsDir ?? '/app/models/core',
          threads: threadsFor(props.resources.cpu.limit),
        },
        fieldRefs: { podName: 'metadata.name', ordinal: POD_INDEX_FIELD },
      }),
      vaultEnv(props.vault, 'core'),
    );

    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        serviceName: name,
        replicas: cores,
        // Cores are independent: start and replace them in parallel, not one by one.
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(1) } },
        selector: { matchLabels: selectorLabels(name) },
        template: {
          metadata: { labels, annotations: podAnnotations(props) },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            hostSpread: props.hostSpread ?? 'required',
            containers: [
              serviceContainer(props, {
                name: 'core',
                command: ['node', 'build/services/workers/main.js', 'core'],
                env,
                resources: props.resources,
                probes,
              }),
            ],
          }),
        },
      },
    });

    // The quorum must survive a voluntary disruption: never evict below `quorum` ready cores.
    podDisruptionBudget(this, name, labels, { minAvailable: quorum });
  }
}
