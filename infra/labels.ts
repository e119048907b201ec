/** The label contract: `app=<name>` plus the `app.kubernetes.io/*` set, on every object we render. */

/** `app.kubernetes.io/part-of` of everything in the stack. */
export const PART_OF = 'ucm4-core';

export interface ComponentLabelOptions {
  /** Component name: the `app` label, `app.kubernetes.io/name` and `app.kubernetes.io/instance`. */
  readonly name: string;
  /** Role in the architecture (`gateway`, `asr`, `vault`...): `app.kubernetes.io/component`. */
  readonly component: string;
  /**
   * Release version: `app.kubernetes.io/version`.
   * @default - no version label
   */
  readonly version?: string;
}

/** Full label set of a component's objects; workloads get `instance` == their metadata.name. */
export function componentLabels(o: ComponentLabelOptions): Record<string, string> {
  const labels: Record<string, string> = {
    app: o.name,
    'app.kubernetes.io/name': o.name,
    'app.kubernetes.io/instance': o.name,
    'app.kubernetes.io/component': o.component,
    'app.kubernetes.io/part-of': PART_OF,
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
  if (o.version !== undefined) labels['app.kubernetes.io/version'] = o.version;
  return labels;
}

/**
 * Selector of a component's pods. Only the stable `app` label: a Deployment's selector is
 * immutable, so it must never depend on a construct path (cdk8s.io/metadata.addr) or a version.
 */
export function selectorLabels(name: string): Record<string, string> {
  return { app: name };
}
