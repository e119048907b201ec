/** Availability: replicas, PDBs, spreading, rollout, priority (A1 A2 A3 A4 A5 A6 A7). */
import type { K8sObject, Rule, RuleContext } from '../types';
import {
  REPLICATED_KINDS,
  hasPods,
  minReplicas,
  nsOf,
  podLabels,
  podSpec,
  podWorkloads,
  scaledValue,
  scalerFor,
  selectorMatches,
  type Json,
} from '../k8s';

/**
 * The stateful store: the in-cluster vault (contract name `vault`, or component label `vault`).
 * An external vault renders no such StatefulSet, so it is never flagged.
 */
export function isStatefulStore(obj: K8sObject): boolean {
  return obj.kind === 'StatefulSet' && (obj.metadata.name === 'vault' || obj.metadata.labels?.['app.kubernetes.io/component'] === 'vault');
}

/** Whether a pod template runs a failover manager (a container port named `sentinel`). */
function hasSentinel(obj: K8sObject): boolean {
  return ((podSpec(obj)?.containers ?? []) as Json[]).some((c) => ((c.ports ?? []) as Json[]).some((p) => p.name === 'sentinel'));
}

export const A1: Rule = {
  id: 'A1',
  title:
    'Deployments and StatefulSets not targeted by an HPA set replicas >= 2 (the vault: >= 3 under Sentinel); targeted ones leave replicas unset and min >= 2, max > min',
  applies: (obj) => obj.kind === 'Deployment' || obj.kind === 'StatefulSet',
  check: (obj, ctx) => {
    const scaler = scalerFor(ctx, obj);
    const replicas = obj.spec?.replicas;
    if (!scaler && isStatefulStore(obj)) {
      const out: string[] = [];
      // Every client fails with a one-node store; two nodes cannot elect a new primary on their own.
      if (!(typeof replicas === 'number' && replicas >= 3))
        out.push(
          `replicas is ${replicas ?? 'unset (1)'}: the in-cluster vault needs at least 3 nodes with a failover quorum (or an external vault)`,
        );
      else if (!hasSentinel(obj))
        out.push(`${replicas} nodes but no Sentinel container (port named sentinel): nothing promotes a replica when the primary fails`);
      return out;
    }
    if (!scaler) {
      return typeof replicas === 'number' && replicas >= 2 ? [] : [`replicas is ${replicas ?? 'unset (1)'}, needs at least 2`];
    }
    const out: string[] = [];
    const by = `${scaler.obj.kind}/${scaler.obj.metadata.name}`;
    // Each apply would reset the autoscaler's choice to the manifest's count.
    if (replicas !== undefined) out.push(`replicas is set (${replicas}) although ${by} scales it`);
    if ((scaler.min ?? 1) < 2) out.push(`${by} min replicas is ${scaler.min}, needs at least 2`);
    if (scaler.max === undefined || scaler.max <= (scaler.min ?? 1))
      out.push(`${by} max replicas ${scaler.max} is not above min ${scaler.min}`);
    return out;
  },
};

function pdbsSelecting(ctx: RuleContext, workload: K8sObject): K8sObject[] {
  const labels = podLabels(workload);
  return ctx.objects.filter(
    (o) => o.kind === 'PodDisruptionBudget' && nsOf(o) === nsOf(workload) && selectorMatches(o.spec?.selector, labels),
  );
}

export const A2: Rule = {
  id: 'A2',
  title: 'every Deployment/StatefulSet has a PodDisruptionBudget selecting it',
  applies: (obj) => REPLICATED_KINDS.has(obj.kind),
  check: (obj, ctx) => (pdbsSelecting(ctx, obj).length > 0 ? [] : ['no PodDisruptionBudget selects its pods']),
};

export const A3: Rule = {
  id: 'A3',
  title: 'PDB: maxUnavailable != 0, minAvailable < replicas (< HPA min), unhealthyPodEvictionPolicy AlwaysAllow',
  applies: (obj) => obj.kind === 'PodDisruptionBudget',
  check: (obj, ctx) => {
    const spec = obj.spec ?? {};
    const out: string[] = [];
    if (spec.minAvailable === undefined && spec.maxUnavailable === undefined) out.push('sets neither minAvailable nor maxUnavailable');
    if (spec.maxUnavailable !== undefined && scaledValue(spec.maxUnavailable, 100) === 0) {
      out.push(`maxUnavailable is ${spec.maxUnavailable}: no voluntary eviction can ever happen (node drains hang)`);
    }
    // Without AlwaysAllow a crash-looping pod blocks every drain of its node.
    if (spec.unhealthyPodEvictionPolicy !== 'AlwaysAllow')
      out.push(`unhealthyPodEvictionPolicy is ${spec.unhealthyPodEvictionPolicy ?? 'unset'}, not AlwaysAllow`);
    const targets = podWorkloads(ctx, nsOf(obj)).filter(
      (w) => REPLICATED_KINDS.has(w.kind) && selectorMatches(spec.selector, podLabels(w)),
    );
    if (targets.length === 0) out.push('selects no Deployment or StatefulSet');
    if (spec.minAvailable !== undefined) {
      for (const w of targets) {
        const n = minReplicas(ctx, w);
        const need = scaledValue(spec.minAvailable, n);
        if (need >= n)
          out.push(
            `minAvailable ${spec.minAvailable} (${need}) is not below the ${n} replica(s) of ${w.kind}/${w.metadata.name}: no eviction possible`,
          );
      }
    }
    return out;
  },
};

const HOSTNAME = 'kubernetes.io/hostname';

function termsOf(aa: Json): Json[] {
  return [
    ...((aa?.requiredDuringSchedulingIgnoredDuringExecution ?? []) as Json[]),
    ...((aa?.preferredDuringSchedulingIgnoredDuringExecution ?? []) as Json[]).map((p) => p.podAffinityTerm ?? {}),
  ];
}

export const A4: Rule = {
  id: 'A4',
  title: 'podAntiAffinity on own labels with topologyKey kubernetes.io/hostname (replicas > 1, and always on the vault)',
  // The vault is checked at any size: a single node is already an A1 finding, and its spread is what a scale-up relies on.
  applies: (obj, ctx) =>
    REPLICATED_KINDS.has(obj.kind) && (isStatefulStore(obj) || scalerFor(ctx, obj) !== undefined || (obj.spec?.replicas ?? 1) > 1),
  check: (obj) => {
    const labels = podLabels(obj);
    const ok = termsOf(podSpec(obj)?.affinity?.podAntiAffinity).some(
      (t) => t.topologyKey === HOSTNAME && selectorMatches(t.labelSelector, labels),
    );
    return ok ? [] : [`no podAntiAffinity term on its own labels with topologyKey ${HOSTNAME}`];
  },
};

export const A5: Rule = {
  id: 'A5',
  title: 'topologySpreadConstraints with labelSelector, maxSkew > 0, topologyKey, whenUnsatisfiable',
  applies: (obj) => REPLICATED_KINDS.has(obj.kind),
  check: (obj) => {
    const tsc: Json[] = podSpec(obj)?.topologySpreadConstraints ?? [];
    if (tsc.length === 0) return ['no topologySpreadConstraints'];
    const labels = podLabels(obj);
    return tsc.flatMap((c, i) => {
      const out: string[] = [];
      if (!selectorMatches(c.labelSelector, labels))
        out.push(`topologySpreadConstraints[${i}]: labelSelector does not select its own pods`);
      if (!(typeof c.maxSkew === 'number' && c.maxSkew > 0)) out.push(`topologySpreadConstraints[${i}]: maxSkew ${c.maxSkew} is not > 0`);
      if (!c.topologyKey) out.push(`topologySpreadConstraints[${i}]: no topologyKey`);
      if (!['DoNotSchedule', 'ScheduleAnyway'].includes(c.whenUnsatisfiable))
        out.push(`topologySpreadConstraints[${i}]: whenUnsatisfiable is ${c.whenUnsatisfiable ?? 'unset'}`);
      return out;
    });
  },
};

export const A6: Rule = {
  id: 'A6',
  title: 'Deployment strategy RollingUpdate',
  applies: (obj) => obj.kind === 'Deployment',
  check: (obj) => {
    const type = obj.spec?.strategy?.type ?? 'RollingUpdate';
    return type === 'RollingUpdate' ? [] : [`strategy is ${type}: every rollout is an outage`];
  },
};

export const A7: Rule = {
  id: 'A7',
  title: 'priorityClassName set, naming a PriorityClass the chart defines',
  applies: (obj) => hasPods(obj) && podSpec(obj) !== undefined,
  check: (obj, ctx) => {
    const name = podSpec(obj).priorityClassName;
    if (!name) return ['no priorityClassName'];
    return ctx.objects.some((o) => o.kind === 'PriorityClass' && o.metadata.name === name)
      ? []
      : [`priorityClassName ${name} is not a PriorityClass of this chart`];
  },
};
