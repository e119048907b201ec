/** PriorityClasses the chart defines: what the scheduler preempts last when nodes run out. */
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';

/** State and quorum: losing them stops every conversation. */
export const PRIORITY_CRITICAL = 'ucm4-critical';
/** Serving path: gateway, speech workers, CALI. */
export const PRIORITY_SERVING = 'ucm4-serving';
/** Batch: seed, backup, smoke. */
export const PRIORITY_BATCH = 'ucm4-batch';

export interface PriorityClassesProps {
  /** @default - no version label */
  readonly version?: string;
}

export class PriorityClasses extends Construct {
  constructor(scope: Construct, id: string, props: PriorityClassesProps = {}) {
    super(scope, id);
    const classes: [string, number, string][] = [
      [PRIORITY_CRITICAL, 100000, 'UCM4 vault and verdict cores: shared state and quorum'],
      [PRIORITY_SERVING, 50000, 'UCM4 serving path: gateway, speech workers, CALI'],
      [PRIORITY_BATCH, 1000, 'UCM4 batch jobs: seed, backup, smoke test'],
    ];
    for (const [name, value, description] of classes) {
      new k8s.KubePriorityClass(this, name, {
        metadata: { name, labels: componentLabels({ name, component: 'scheduling', version: props.version }) },
        value,
        globalDefault: false,
        preemptionPolicy: name === PRIORITY_BATCH ? 'Never' : 'PreemptLowerPriority',
        description,
      });
    }
  }
}
