/** Cali: Deployment `cali` — waits for the verdict quorum, writes the reply, updates memory. */
import { COMPONENTS, quorumProblems } from '../services/contract';
import { Construct } from 'constructs';
import { componentLabels, selectorLabels } from './labels';
import { k8s } from './k8s';
import { HTTP_PORT, HTTP_PORT_NAME, hardenedPodSpec, httpProbes, type ResourceSpec } from './hardened-pod';
import { CALI_ROLE_ENV, mergeEnv, renderEnv, vaultEnv, type VaultEndpoint } from './service-env';
import {
  budgetFor,
  podAnnotations,
  podDisruptionBudget,
  workloadAnnotations,
  workloadServiceAccount,
  type WorkloadProps,
  serviceContainer,
  namesOf,
  surgeOneRollout,
} from './workload-support';

export const CALI: string = COMPONENTS.cali;

/** An OpenAI-compatible chat endpoint for free-form replies (CALI falls back to offline replies without it). */
export interface CaliChatProps {
  /** Base URL (…/v1), http or https. */
  readonly url: string;
  /** @default gpt-4o-mini */
  readonly model?: string;
  /** Secret key holding the bearer token. @default - no token */
  readonly apiKey?: { readonly secret: string; readonly key: string };
  /** Addresses the endpoint resolves to: NetworkPolicies cannot name hosts, so CALI's egress opens this block. */
  readonly cidr: string;
}

/** The TCP port a chat URL connects to (its explicit port, else 443 for https and 80 for http). */
export function chatPort(url: string): number {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`'chat.url' (${url}) is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`'chat.url' (${url}) must be http or https`);
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

export interface CaliProps extends WorkloadProps {
  /** @default 2 */
  readonly replicas?: number;
  readonly resources: ResourceSpec;
  readonly vault: VaultEndpoint;
  /** Verdict cores and quorum, from the CoreQuorum. */
  readonly cores: number;
  readonly quorum: number;
  /** @default - no chat endpoint: deterministic offline replies */
  readonly chat?: CaliChatProps;
}

export class Cali extends Construct {
  public readonly deployment: k8s.KubeDeployment;
  public readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: CaliProps) {
    super(scope, id);
    const replicas = props.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`'replicas' (${replicas}) must be an integer >= 1`);
    if (props.chat) chatPort(props.chat.url);
    const problem = quorumProblems(props.cores, props.quorum)[0];
    if (problem) throw new Error(`'${problem.field}' (${props[problem.field]}) ${problem.message}`);
    const name = namesOf(props).component.cali;
    const labels = componentLabels({ name, component: 'navigation', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);
    const probes = httpProbes();
    const env = mergeEnv(
      renderEnv(CALI_ROLE_ENV, {
        values: {
          port: HTTP_PORT,
          cores: props.cores,
          quorum: props.quorum,
          // The "+1": the last ordinal breaks ties.
          tieBreakCore: props.cores - 1,
          ...(props.chat ? { chatUrl: props.chat.url, ...(props.chat.model ? { chatModel: props.chat.model } : {}) } : {}),
        },
        secrets: props.chat?.apiKey ? { chatApiKey: props.chat.apiKey } : undefined,
        fieldRefs: { podName: 'metadata.name' },
      }),
      vaultEnv(props.vault, 'cali'),
    );
    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        replicas,
        selector: { matchLabels: selectorLabels(name) },
        strategy: surgeOneRollout(),
        template: {
          metadata: { labels, annotations: podAnnotations(props) },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            containers: [
              serviceContainer(props, {
                name,
                command: ['node', 'build/services/workers/main.js', 'cali'],
                env,
                resources: props.resources,
                probes,
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
    podDisruptionBudget(this, name, labels, budgetFor(replicas, replicas > 1 ? 1 : undefined, 'minAvailable'));
  }
}
