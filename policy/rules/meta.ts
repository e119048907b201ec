/** Metadata, API versions, controllers, RBAC and schema: M1 M2 M3 M5 M6 B1 K1. */
import type { Rule } from '../types';
import { containersOf, hasPods, mapSelectorMatches, nsOf, podLabels, podTemplate, type Json } from '../k8s';

export const M1: Rule = {
  id: 'M1',
  title: 'selector.matchLabels is a subset of the template labels',
  applies: (obj) => hasPods(obj) && obj.kind !== 'Pod' && obj.kind !== 'CronJob' && obj.spec?.selector !== undefined,
  check: (obj) => {
    const labels = podLabels(obj);
    return Object.entries((obj.spec.selector.matchLabels ?? {}) as Record<string, string>)
      .filter(([k, v]) => labels[k] !== v)
      .map(([k, v]) => `selector ${k}=${v} is not a label of the pod template`);
  },
};

/** group/version pairs removed or deprecated upstream (kube-score stable-version, Pluto's list). */
export const DEPRECATED_API_VERSIONS = new Set([
  'extensions/v1beta1',
  'apps/v1beta1',
  'apps/v1beta2',
  'policy/v1beta1',
  'batch/v1beta1',
  'batch/v2alpha1',
  'autoscaling/v2beta1',
  'autoscaling/v2beta2',
  'networking.k8s.io/v1beta1',
  'rbac.authorization.k8s.io/v1beta1',
  'rbac.authorization.k8s.io/v1alpha1',
  'scheduling.k8s.io/v1beta1',
  'scheduling.k8s.io/v1alpha1',
  'storage.k8s.io/v1beta1',
  'apiextensions.k8s.io/v1beta1',
  'admissionregistration.k8s.io/v1beta1',
  'certificates.k8s.io/v1beta1',
  'coordination.k8s.io/v1beta1',
  'discovery.k8s.io/v1beta1',
  'events.k8s.io/v1beta1',
  'node.k8s.io/v1beta1',
  'flowcontrol.apiserver.k8s.io/v1beta1',
  'flowcontrol.apiserver.k8s.io/v1beta2',
  'flowcontrol.apiserver.k8s.io/v1beta3',
  'monitoring.coreos.com/v1alpha1',
]);

export const M2: Rule = {
  id: 'M2',
  title: 'no deprecated apiVersions',
  applies: () => true,
  check: (obj) => (DEPRECATED_API_VERSIONS.has(obj.apiVersion) ? [`apiVersion ${obj.apiVersion} is deprecated or removed`] : []),
};

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob']);

function labelProblems(where: string, labels: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf('/');
    const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
    const name = k.slice(slash + 1);
    if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
      out.push(`${where} label key '${k}' has an invalid prefix`);
    if (name.length > 63 || !LABEL_NAME.test(name)) out.push(`${where} label key '${k}' is not a valid name`);
    if (typeof v !== 'string') out.push(`${where} label ${k} is ${JSON.stringify(v)}, not a string`);
    else if (v.length > 63 || !LABEL_VALUE.test(v)) out.push(`${where} label ${k}=${JSON.stringify(v)} is not a valid label value`);
  }
  return out;
}

export const M3: Rule = {
  id: 'M3',
  title: 'label values valid; app.kubernetes.io/instance == metadata.name on workloads',
  applies: () => true,
  check: (obj) => {
    const out = labelProblems('metadata', obj.metadata?.labels ?? {});
    const tpl = podTemplate(obj);
    if (tpl && obj.kind !== 'Pod') out.push(...labelProblems('pod template', tpl.metadata?.labels ?? {}));
    if (WORKLOAD_KINDS.has(obj.kind)) {
      const instance = obj.metadata.labels?.['app.kubernetes.io/instance'];
      if (instance !== obj.metadata.name)
        out.push(`label app.kubernetes.io/instance is ${instance ?? 'unset'}, not the name ${obj.metadata.name}`);
    }
    return out;
  },
};

export const M5: Rule = {
  id: 'M5',
  title: 'StatefulSet serviceName names a headless Service selecting it',
  applies: (obj) => obj.kind === 'StatefulSet',
  check: (obj, ctx) => {
    const name = obj.spec?.serviceName;
    if (!name) return ['spec.serviceName is not set'];
    const svc = ctx.objects.find((o) => o.kind === 'Service' && o.metadata.name === name && nsOf(o) === nsOf(obj));
    if (!svc) return [`serviceName ${name} names no Service`];
    const out: string[] = [];
    if (svc.spec?.clusterIP !== 'None') out.push(`Service ${name} is not headless (clusterIP: None)`);
    if (!mapSelectorMatches(svc.spec?.selector, podLabels(obj))) out.push(`Service ${name} does not select the StatefulSet's pods`);
    return out;
  },
};

export const M6: Rule = {
  id: 'M6',
  title: 'Jobs set ttlSecondsAfterFinished; CronJobs startingDeadlineSeconds and a valid restartPolicy',
  applies: (obj) => obj.kind === 'Job' || obj.kind === 'CronJob',
  check: (obj) => {
    const out: string[] = [];
    const jobSpec = obj.kind === 'Job' ? obj.spec : obj.spec?.jobTemplate?.spec;
    if (obj.kind === 'Job' && typeof jobSpec?.ttlSecondsAfterFinished !== 'number')
      out.push('ttlSecondsAfterFinished is not set: finished Jobs pile up');
    if (obj.kind === 'CronJob') {
      const d = obj.spec?.startingDeadlineSeconds;
      if (!(typeof d === 'number' && d > 0)) out.push(`startingDeadlineSeconds is ${d ?? 'unset'}: missed runs pile up after an outage`);
    }
    const rp = jobSpec?.template?.spec?.restartPolicy;
    if (rp !== 'OnFailure' && rp !== 'Never') out.push(`restartPolicy is ${rp ?? 'unset'}, must be OnFailure or Never`);
    return out;
  },
};

const RBAC_ROLE_KINDS = new Set(['Role', 'ClusterRole']);
const RBAC_BINDING_KINDS = new Set(['RoleBinding', 'ClusterRoleBinding']);

export const B1: Rule = {
  id: 'B1',
  title: 'no pods/exec or pods/attach, no wildcard verbs/resources, no cluster-admin bindings',
  applies: (obj) => RBAC_ROLE_KINDS.has(obj.kind) || RBAC_BINDING_KINDS.has(obj.kind),
  check: (obj) => {
    if (RBAC_BINDING_KINDS.has(obj.kind)) {
      return obj.roleRef?.name === 'cluster-admin' ? [`binds cluster-admin`] : [];
    }
    const out: string[] = [];
    ((obj.rules ?? []) as Json[]).forEach((r, i) => {
      const verbs: string[] = r.verbs ?? [];
      const resources: string[] = r.resources ?? [];
      if (verbs.includes('*')) out.push(`rules[${i}]: wildcard verb`);
      if (resources.some((x) => x === '*' || x.endsWith('/*'))) out.push(`rules[${i}]: wildcard resource`);
      if ((r.apiGroups ?? []).includes('*')) out.push(`rules[${i}]: wildcard apiGroup`);
      for (const sub of ['pods/exec', 'pods/attach']) if (resources.includes(sub)) out.push(`rules[${i}]: grants ${sub}`);
    });
    return out;
  },
};

type ModelClass = (new (data: unknown) => { validate(): void }) & { apiVersion: string; kind: string };

/**
 * The packages holding the schemas, each laid out `<pkg>/<apiVersion>/<Kind>`. Classes are
 * required one kind at a time: importing the packages whole costs about a second of start-up
 * for every `npm run policy` and `npm run review`, for the dozen kinds a stack uses.
 */
const MODEL_PACKAGES = ['kubernetes-models', '@kubernetes-models/keda', '@kubernetes-models/prometheus-operator'];
const MODELS = new Map<string, ModelClass | undefined>();

function loadModel(apiVersion: string, kind: string): ModelClass | undefined {
  // Only names that are paths inside a package, never `..` or an absolute path from a manifest.
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z0-9]+$/.test(kind)) return undefined;
  for (const pkg of MODEL_PACKAGES) {
    let mod: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(`${pkg}/${apiVersion}/${kind}`) as Record<string, unknown>;
    } catch {
      continue;
    }
    const c = mod[kind] as ModelClass | undefined;
    if (typeof c === 'function' && c.apiVersion === apiVersion && c.kind === kind) return c;
  }
  return undefined;
}

/** apiVersion/kind → kubernetes-models class, for core kinds and the KEDA/prometheus-operator CRDs. */
export function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  const key = `${apiVersion}/${kind}`;
  if (!MODELS.has(key)) MODELS.set(key, loadModel(apiVersion, kind));
  return MODELS.get(key);
}

/** IANA_SVC_NAME, what the API server demands of a containerPort name. */
function isIanaServiceName(name: string): boolean {
  return name.length <= 15 && /[a-z]/.test(name) && !name.includes('--') && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name);
}

export const K1: Rule = {
  id: 'K1',
  title: 'valid against the Kubernetes OpenAPI schema (kubernetes-models; KEDA and prometheus-operator CRDs)',
  applies: () => true,
  check: (obj) => {
    const Model = modelFor(obj.apiVersion, obj.kind);
    if (!Model) return [`no schema known for ${obj.apiVersion} ${obj.kind}`];
    const out: string[] = [];
    if (!obj.metadata?.name) out.push('metadata.name is not set');
    try {
      new Model(obj).validate();
    } catch (e) {
      out.push(
        ...String((e as Error).message)
          .split(', ')
          .map((m) => m.replace(/^data\//, '')),
      );
    }
    // kubernetes-models skips the cross-field rules of the API server that bite most often.
    for (const r of containersOf(obj)) {
      for (const p of (r.container.ports ?? []) as Json[]) {
        if (p.name !== undefined && !isIanaServiceName(p.name)) {
          out.push(`${r.list} ${r.container.name}: port name '${p.name}' is not an IANA service name (<= 15 chars, lowercase, a letter)`);
        }
      }
    }
    return out;
  },
};
