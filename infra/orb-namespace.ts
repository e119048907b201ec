/** OrbNamespace: the namespace, labelled so Pod Security admission enforces the restricted profile. */
import { Construct } from 'constructs';
import { componentLabels, PART_OF } from './labels';
import { k8s } from './k8s';

export interface OrbNamespaceProps {
  readonly name: string;
  /** @default - no version label */
  readonly version?: string;
}

export class OrbNamespace extends Construct {
  public readonly namespace: k8s.KubeNamespace;

  constructor(scope: Construct, id: string, props: OrbNamespaceProps) {
    super(scope, id);
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(props.name)) throw new Error(`'name' (${props.name}) must be a DNS label`);
    this.namespace = new k8s.KubeNamespace(this, 'namespace', {
      metadata: {
        name: props.name,
        labels: {
          ...componentLabels({ name: PART_OF, component: 'namespace', version: props.version }),
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    });
  }
}
