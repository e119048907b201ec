/** Container-level rules: resources, images, probes (R1 R2 I1 I2 P1 P2 P3). */
import type { K8sObject, Rule } from '../types';
import { LONG_RUNNING_KINDS, containerLabel, containersOf, hasPods, type ContainerRef, type Json } from '../k8s';

const withContainers = (obj: K8sObject) => hasPods(obj) && containersOf(obj).length > 0;

function perContainer(obj: K8sObject, fn: (c: Json, label: string, ref: ContainerRef) => string[]): string[] {
  return containersOf(obj).flatMap((r) => fn(r.container, containerLabel(r), r));
}

export const R1: Rule = {
  id: 'R1',
  title: 'requests.cpu, requests.memory, limits.cpu, limits.memory set, as strings',
  applies: withContainers,
  check: (obj) =>
    perContainer(obj, (c, label) => {
      const out: string[] = [];
      for (const section of ['requests', 'limits'] as const) {
        for (const res of ['cpu', 'memory']) {
          const v = c.resources?.[section]?.[res];
          if (v === undefined || v === null || v === '') out.push(`${label}: resources.${section}.${res} is not set`);
          // A YAML number (e.g. cpu: 1) round-trips badly through Helm/kustomize; quantities are strings.
          else if (typeof v !== 'string') out.push(`${label}: resources.${section}.${res} is ${JSON.stringify(v)}, not a string quantity`);
        }
      }
      return out;
    }),
};

export const R2: Rule = {
  id: 'R2',
  title: 'ephemeral-storage request and limit set',
  applies: withContainers,
  check: (obj) =>
    perContainer(obj, (c, label) =>
      (['requests', 'limits'] as const)
        .filter((s) => !c.resources?.[s]?.['ephemeral-storage'])
        .map((s) => `${label}: resources.${s}.ephemeral-storage is not set`),
    ),
};

/** Splits an image reference into its tag and digest; the registry port never counts as a tag. */
export function parseImage(image: string): { tag?: string; digest?: string } {
  const [nameAndTag, digest] = image.split('@');
  const lastSlash = nameAndTag.lastIndexOf('/');
  const last = nameAndTag.slice(lastSlash + 1);
  const colon = last.indexOf(':');
  return { tag: colon >= 0 ? last.slice(colon + 1) : undefined, digest };
}

export const I1: Rule = {
  id: 'I1',
  title: 'image has a tag, not latest; prod pins @sha256: digests',
  applies: withContainers,
  check: (obj, ctx) =>
    perContainer(obj, (c, label) => {
      const image: string | undefined = c.image;
      if (!image) return [`${label}: no image`];
      const { tag, digest } = parseImage(image);
      const out: string[] = [];
      if (!tag) out.push(`${label}: image '${image}' has no tag`);
      else if (tag === 'latest') out.push(`${label}: image '${image}' uses the 'latest' tag`);
      if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) out.push(`${label}: image '${image}' has a malformed digest`);
      if (ctx.profile.requireDigests && digest === undefined)
        out.push(`${label}: image '${image}' is not pinned by @sha256: digest (required in ${ctx.env})`);
      return out;
    }),
};

export const I2: Rule = {
  id: 'I2',
  title: 'imagePullPolicy: Always',
  applies: withContainers,
  check: (obj) =>
    perContainer(obj, (c, label) =>
      c.imagePullPolicy === 'Always' ? [] : [`${label}: imagePullPolicy is ${c.imagePullPolicy ?? 'unset'}, not Always`],
    ),
};

/** Seconds a startupProbe gives a GPU worker to load its models before the kubelet kills it. */
export const GPU_STARTUP_BUDGET_S = 120;
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** initContainers with restartPolicy Always are sidecars: long-running, so they need probes too. */
function isLongRunning(ref: ContainerRef): boolean {
  return ref.list === 'containers' || ref.container.restartPolicy === 'Always';
}

function startupBudget(p: Json): number {
  return (p.failureThreshold ?? 3) * (p.periodSeconds ?? 10) + (p.initialDelaySeconds ?? 0);
}

export const P1: Rule = {
  id: 'P1',
  title: 'long-running containers have readiness and liveness probes; GPU workers a startupProbe sized for model load',
  applies: (obj) => LONG_RUNNING_KINDS.has(obj.kind) && withContainers(obj),
  check: (obj) =>
    perContainer(obj, (c, label, ref) => {
      if (!isLongRunning(ref)) return [];
      const out: string[] = [];
      if (!c.readinessProbe) out.push(`${label}: no readinessProbe`);
      if (!c.livenessProbe) out.push(`${label}: no livenessProbe`);
      const gpu = c.resources?.limits?.[GPU_RESOURCE] ?? c.resources?.requests?.[GPU_RESOURCE];
      if (gpu !== undefined && Number(gpu) > 0) {
        if (!c.startupProbe) out.push(`${label}: GPU worker has no startupProbe to cover model load`);
        else if (startupBudget(c.startupProbe) < GPU_STARTUP_BUDGET_S) {
          out.push(
            `${label}: startupProbe allows ${startupBudget(c.startupProbe)} s, less than the ${GPU_STARTUP_BUDGET_S} s a model load needs`,
          );
        }
      }
      return out;
    }),
};

const HANDLERS = ['httpGet', 'tcpSocket', 'exec', 'grpc'];

function handlerOf(p: Json): Json {
  const h: Json = {};
  for (const k of HANDLERS) if (p[k] !== undefined) h[k] = p[k];
  return h;
}

export const P2: Rule = {
  id: 'P2',
  title: 'readinessProbe differs from livenessProbe',
  applies: (obj) => containersOf(obj).some((r) => r.container.readinessProbe && r.container.livenessProbe),
  check: (obj) =>
    perContainer(obj, (c, label) => {
      if (!c.readinessProbe || !c.livenessProbe) return [];
      // Same endpoint for both: a slow dependency makes the kubelet restart pods it should only unroute.
      return JSON.stringify(sortKeys(handlerOf(c.readinessProbe))) === JSON.stringify(sortKeys(handlerOf(c.livenessProbe)))
        ? [`${label}: readinessProbe and livenessProbe check the same thing (${JSON.stringify(handlerOf(c.livenessProbe))})`]
        : [];
    }),
};

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

export const P3: Rule = {
  id: 'P3',
  title: 'probe ports name or number a declared containerPort',
  applies: (obj) => containersOf(obj).some((r) => ['readinessProbe', 'livenessProbe', 'startupProbe'].some((p) => r.container[p])),
  check: (obj) =>
    perContainer(obj, (c, label) => {
      const ports: Json[] = c.ports ?? [];
      const out: string[] = [];
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const p = c[kind];
        if (!p) continue;
        const port = p.httpGet?.port ?? p.tcpSocket?.port ?? p.grpc?.port;
        if (port === undefined) continue;
        const ok = typeof port === 'string' ? ports.some((d) => d.name === port) : ports.some((d) => d.containerPort === port);
        if (!ok) out.push(`${label}: ${kind} port ${JSON.stringify(port)} is not a declared containerPort`);
      }
      return out;
    }),
};
