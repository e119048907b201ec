/** SmokeTest: Job `orb-smoke` — an in-cluster test against the `orb-core` Service (file test-pods). */
import { COMPONENTS, PORTS } from '../services/contract';
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, type ResourceSpec } from './hardened-pod';
import { renderEnv, SMOKE_ROLE_ENV, type SecretKeyRef } from './service-env';
import { workloadAnnotations, workloadServiceAccount, type WorkloadProps, namesOf } from './workload-support';

export const ORB_SMOKE: string = COMPONENTS.orbSmoke;

export interface SmokeTestProps extends WorkloadProps {
  /** @default - Secret `orb-smoke`, key `api-key` */
  readonly apiKey?: SecretKeyRef;
  readonly resources: ResourceSpec;
  /**
   * Also run the acceptance check (`orb smoke --accept`: golden utterances, word error rates, TTS
   * round trip, latency by stage) with these thresholds.
   * @default - smoke steps only
   */
  readonly acceptance?: { readonly maxWer: number; readonly maxRoundTripWer: number; readonly testMode: boolean };
}

export class SmokeTest extends Construct {
  public readonly job: k8s.KubeJob;

  constructor(scope: Construct, id: string, props: SmokeTestProps) {
    super(scope, id);
    const names = namesOf(props);
    const name = names.component.orbSmoke;
    const labels = componentLabels({ name, component: 'test', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);
    this.job = new k8s.KubeJob(this, 'job', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        backoffLimit: 0,
        // The acceptance check adds nine speech requests and a spoken turn on real weights.
        activeDeadlineSeconds: props.acceptance ? 600 : 300,
        // Kept a day so `kubectl logs job/orb-smoke` still shows the result.
        ttlSecondsAfterFinished: 86400,
        template: {
          metadata: { labels },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            restartPolicy: 'Never',
            hostSpread: 'none',
            containers: [
              hardenedContainer({
                name: 'smoke',
                image: props.image,
                imagePullPolicy: props.imagePullPolicy ?? 'Always',
                // --speak: the audio turn must also come back as reply audio (xtts), not only text.
                command: ['node', 'build/services/cli/orb.js', 'smoke', '--speak', ...(props.acceptance ? ['--accept'] : [])],
                env: renderEnv(SMOKE_ROLE_ENV, {
                  values: {
                    url: `http://${names.component.orbCore}:${PORTS.http}`,
                    ...(props.acceptance
                      ? {
                          maxWer: props.acceptance.maxWer,
                          maxRoundTripWer: props.acceptance.maxRoundTripWer,
                          testMode: props.acceptance.testMode,
                        }
                      : {}),
                  },
                  secrets: { apiKey: props.apiKey ?? { secret: name, key: 'api-key' } },
                }),
                resources: props.resources,
              }),
            ],
          }),
        },
      },
    });
  }
}
