/** Pod security (PSS restricted and friends): S1 S2 S3 S4 S5 S6 S7 S9 S10 S11. */
import type { K8sObject, Rule, RuleContext } from '../types';
import { containerLabel, containersOf, effectiveSecurity, hasPods, nsOf, podSpec, type Json } from '../k8s';

const withContainers = (obj: K8sObject) => hasPods(obj) && containersOf(obj).length > 0;

/** UIDs/GIDs below this can collide with host users (kube-score's bar). */
export const MIN_ID = 10000;

export const S1: Rule = {
  id: 'S1',
  title: 'effective runAsNonRoot true; runAsUser and runAsGroup >= 10000',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) => {
      const sc = effectiveSecurity(obj, r.container);
      const label = containerLabel(r);
      const out: string[] = [];
      if (sc.runAsNonRoot !== true) out.push(`${label}: effective runAsNonRoot is ${sc.runAsNonRoot ?? 'unset'}, not true`);
      for (const f of ['runAsUser', 'runAsGroup']) {
        if (typeof sc[f] !== 'number') out.push(`${label}: effective ${f} is unset`);
        else if (sc[f] < MIN_ID) out.push(`${label}: effective ${f} ${sc[f]} is below ${MIN_ID}`);
      }
      return out;
    }),
};

export const S2: Rule = {
  id: 'S2',
  title: 'allowPrivilegeEscalation: false explicit on every container',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) =>
      r.container.securityContext?.allowPrivilegeEscalation === false
        ? []
        : [
            `${containerLabel(r)}: securityContext.allowPrivilegeEscalation is ${r.container.securityContext?.allowPrivilegeEscalation ?? 'unset'}, not false`,
          ],
    ),
};

export const S3: Rule = {
  id: 'S3',
  title: 'not privileged',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) =>
      effectiveSecurity(obj, r.container).privileged === true ? [`${containerLabel(r)}: runs privileged`] : [],
    ),
};

export const S4: Rule = {
  id: 'S4',
  title: 'readOnlyRootFilesystem: true',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) =>
      r.container.securityContext?.readOnlyRootFilesystem === true
        ? []
        : [`${containerLabel(r)}: securityContext.readOnlyRootFilesystem is not true`],
    ),
};

export const S5: Rule = {
  id: 'S5',
  title: 'capabilities.drop contains ALL; add empty',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) => {
      const caps = r.container.securityContext?.capabilities ?? {};
      const out: string[] = [];
      if (!((caps.drop ?? []) as string[]).some((c) => c.toUpperCase() === 'ALL'))
        out.push(`${containerLabel(r)}: capabilities.drop does not contain ALL`);
      if ((caps.add ?? []).length > 0) out.push(`${containerLabel(r)}: capabilities.add is ${JSON.stringify(caps.add)}, must be empty`);
      return out;
    }),
};

export const S6: Rule = {
  id: 'S6',
  title: 'pod seccompProfile.type: RuntimeDefault',
  applies: (obj) => hasPods(obj) && podSpec(obj) !== undefined,
  check: (obj) => {
    const out: string[] = [];
    const type = podSpec(obj)?.securityContext?.seccompProfile?.type;
    if (type !== 'RuntimeDefault') out.push(`pod securityContext.seccompProfile.type is ${type ?? 'unset'}, not RuntimeDefault`);
    for (const r of containersOf(obj)) {
      const own = r.container.securityContext?.seccompProfile?.type;
      if (own !== undefined && own !== 'RuntimeDefault') out.push(`${containerLabel(r)}: overrides seccompProfile.type with ${own}`);
    }
    return out;
  },
};

/** Volume sources PSS "restricted" allows; everything else reaches into the node. */
export const ALLOWED_VOLUMES = ['configMap', 'secret', 'emptyDir', 'projected', 'downwardAPI', 'persistentVolumeClaim', 'csi', 'ephemeral'];

export const S7: Rule = {
  id: 'S7',
  title: 'no host namespaces, hostPort or hostPath; only restricted volume types',
  applies: (obj) => hasPods(obj) && podSpec(obj) !== undefined,
  check: (obj) => {
    const spec = podSpec(obj);
    const out: string[] = [];
    for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) if (spec[f] === true) out.push(`pod sets ${f}: true`);
    for (const r of containersOf(obj)) {
      for (const p of r.container.ports ?? [])
        if (p.hostPort !== undefined) out.push(`${containerLabel(r)}: port ${p.containerPort} sets hostPort ${p.hostPort}`);
    }
    for (const v of (spec.volumes ?? []) as Json[]) {
      const types = Object.keys(v).filter((k) => k !== 'name');
      for (const t of types)
        if (!ALLOWED_VOLUMES.includes(t)) out.push(`volume ${v.name} is of type ${t}, not one of ${ALLOWED_VOLUMES.join(', ')}`);
    }
    return out;
  },
};

/** ServiceAccounts bound to some Role/ClusterRole: their workloads call the Kubernetes API. */
function boundServiceAccounts(ctx: RuleContext): Set<string> {
  const out = new Set<string>();
  for (const b of ctx.objects) {
    if (b.kind !== 'RoleBinding' && b.kind !== 'ClusterRoleBinding') continue;
    for (const s of b.subjects ?? []) if (s.kind === 'ServiceAccount') out.add(`${s.namespace ?? nsOf(b)}/${s.name}`);
  }
  return out;
}

function serviceAccountOf(obj: K8sObject): string {
  const spec = podSpec(obj) ?? {};
  return spec.serviceAccountName ?? spec.serviceAccount ?? 'default';
}

export const S9: Rule = {
  id: 'S9',
  title: 'automountServiceAccountToken false on pod and ServiceAccount unless the API is called; a dedicated ServiceAccount per workload',
  applies: (obj) => obj.kind === 'ServiceAccount' || (hasPods(obj) && podSpec(obj) !== undefined),
  check: (obj, ctx) => {
    const bound = boundServiceAccounts(ctx);
    if (obj.kind === 'ServiceAccount') {
      const key = `${nsOf(obj)}/${obj.metadata.name}`;
      if (bound.has(key)) return [];
      return obj.automountServiceAccountToken === false
        ? []
        : ['ServiceAccount does not set automountServiceAccountToken: false and no Role binds it'];
    }
    const out: string[] = [];
    const sa = serviceAccountOf(obj);
    const key = `${nsOf(obj)}/${sa}`;
    if (sa === 'default') out.push('pod runs as the namespace default ServiceAccount; give it a dedicated one');
    else {
      if (!ctx.objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa && nsOf(o) === nsOf(obj))) {
        out.push(`ServiceAccount ${sa} is not defined`);
      }
      const sharers = ctx.objects.filter((o) => o !== obj && hasPods(o) && nsOf(o) === nsOf(obj) && serviceAccountOf(o) === sa);
      if (sharers.length > 0)
        out.push(`ServiceAccount ${sa} is shared with ${sharers.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
    }
    if (!bound.has(key) && podSpec(obj).automountServiceAccountToken !== false) {
      out.push('pod does not set automountServiceAccountToken: false but its ServiceAccount has no Role');
    }
    return out;
  },
};

const SECRET_WORDS = new Set([
  'secret',
  'secrets',
  'password',
  'passwords',
  'passwd',
  'pwd',
  'token',
  'tokens',
  'key',
  'keys',
  'apikey',
  'apikeys',
  'credentials',
]);
/** A trailing word that makes the name describe a secret rather than hold one (VAULT_KEY_PREFIX, TOKEN_PATH). */
const METADATA_SUFFIXES = new Set([
  'prefix',
  'path',
  'file',
  'dir',
  'name',
  'ref',
  'id',
  'ttl',
  'pattern',
  'patterns',
  'header',
  'length',
  'bits',
  'algorithm',
]);

/** Whether a variable or config key name says it holds a secret. */
export function looksSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (words.length === 0 || !words.some((w) => SECRET_WORDS.has(w))) return false;
  return !METADATA_SUFFIXES.has(words[words.length - 1]);
}

/** Literal credentials inside config files (Polaris sensitiveConfigmapContent), by what gives them away. */
const SECRET_CONTENT: readonly [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key'],
  // Redis ACL user lines: `>password` sets a literal password, `#<sha256>` a literal hash.
  [/^\s*user\s+\S+\s.*(\s>[^\s]+|\s#[0-9a-fA-F]{64}\b)/m, 'a Redis ACL password'],
  [/^\s*(requirepass|masterauth)\s+\S+/m, 'a Redis password directive'],
  // `password: x`, `"token": "x"`, `api_key=x`; values that are variables ($X, ${X}, <x>, {{x}}) are fine.
  [/\b(password|passwd|secret|api[_-]?key|token)["']?\s*[:=]\s*["']?[^\s"'$<{-]/i, 'a literal credential'],
];

export function secretContent(text: string): string[] {
  return SECRET_CONTENT.filter(([re]) => re.test(text)).map(([, what]) => what);
}

export const S10: Rule = {
  id: 'S10',
  title: 'no literal env values for secret-looking names; secrets by secretKeyRef',
  applies: (obj) => withContainers(obj) || obj.kind === 'Secret' || obj.kind === 'ConfigMap',
  check: (obj) => {
    if (obj.kind === 'Secret') {
      const keys = [...Object.keys(obj.data ?? {}), ...Object.keys(obj.stringData ?? {})];
      // dist/ is committed: a Secret with data there is a leaked credential.
      return keys.length > 0 ? [`Secret carries literal values for ${keys.join(', ')}; create it out of band`] : [];
    }
    if (obj.kind === 'ConfigMap') {
      const keys = Object.keys({ ...(obj.data ?? {}), ...(obj.binaryData ?? {}) })
        .filter(looksSecret)
        .map((k) => `ConfigMap key ${k} looks like a secret; keep it in a Secret`);
      const values = Object.entries((obj.data ?? {}) as Record<string, string>).flatMap(([k, v]) =>
        secretContent(String(v)).map((what) => `ConfigMap key ${k} contains ${what}; keep it in a Secret`),
      );
      return [...keys, ...values];
    }
    return containersOf(obj).flatMap((r) =>
      ((r.container.env ?? []) as Json[]).flatMap((e) => {
        if (!looksSecret(e.name)) return [];
        if (e.valueFrom?.secretKeyRef) return [];
        if (e.value !== undefined) return [`${containerLabel(r)}: env ${e.name} has a literal value; use valueFrom.secretKeyRef`];
        return [`${containerLabel(r)}: env ${e.name} is not read from a Secret (secretKeyRef)`];
      }),
    );
  },
};

export const S11: Rule = {
  id: 'S11',
  title: 'no duplicate env names',
  applies: withContainers,
  check: (obj) =>
    containersOf(obj).flatMap((r) => {
      const seen = new Set<string>();
      const dup = new Set<string>();
      for (const e of (r.container.env ?? []) as Json[]) (seen.has(e.name) ? dup : seen).add(e.name);
      return [...dup].map((n) => `${containerLabel(r)}: env ${n} is defined more than once`);
    }),
};
