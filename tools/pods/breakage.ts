/**
 * Deliberate breakages for `npm run e2e:pods -- --break <case>`: each one changes one field of the
 * rendered manifests the way a bad change to the constructs would, so the run shows that the pod
 * runner catches it and names the object and the field. The runner applies a case to a copy of
 * dist/<env> (and of dist/prod for the KEDA case) in its state folder; the committed dist/ is
 * never touched.
 */
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { COMPONENTS, PORTS } from '../../services/contract';
import type { K8sObject } from './manifests';

const { orbCore, vault, cali } = COMPONENTS;

export interface Breakage {
  /** What the change does, as a reviewer would describe the bad commit. */
  readonly change: string;
  /** Which rendered tree the change applies to. */
  readonly tree: 'env' | 'prod';
  /** What the run must then report: a pattern over its failure output (object and field named). */
  readonly expect: RegExp;
  /** Changes the objects in place; returns the object and field it changed. */
  apply(objects: K8sObject[]): string;
}

const find = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`breakage: ${kind}/${name} is not rendered`);
  return o;
};

export const BREAKAGES: Record<string, Breakage> = {
  'keda-group': {
    change:
      "the whisperx ScaledObject watches consumer group 'whisperx' (the bug the runner first found) instead of the group the workers read as",
    tree: 'prod',
    expect: /ScaledObject\/whisperx spec\.triggers\[0\]\.metadata\.consumerGroup 'whisperx' is not a consumer group/,
    apply(objs) {
      const so = find(objs, 'ScaledObject', 'whisperx');
      so.spec.triggers[0].metadata.consumerGroup = 'whisperx';
      return 'ScaledObject/whisperx spec.triggers[0].metadata.consumerGroup';
    },
  },
  'probe-path': {
    change: `${orbCore}'s readinessProbe asks /ready, a path the gateway does not serve`,
    tree: 'env',
    expect: new RegExp(`Deployment/${orbCore} pod \\S+ container [\\w-]+: readinessProbe httpGet /ready port \\S+: HTTP 40\\d`),
    apply(objs) {
      const c = find(objs, 'Deployment', orbCore).spec.template.spec.containers[0];
      c.readinessProbe.httpGet.path = '/ready';
      return `Deployment/${orbCore} spec.template.spec.containers[0].readinessProbe.httpGet.path`;
    },
  },
  'netpol-edge': {
    change: "the vault's NetworkPolicy loses its ingress rule for cali (an edge dropped from the network graph)",
    tree: 'env',
    expect: new RegExp(
      `${cali}-\\S+ → ${vault}-0:${PORTS.vault}/tcp dropped by ${vault}-0's ingress: NetworkPolicy/${vault} spec\\.ingress has no rule that admits it`,
    ),
    apply(objs) {
      const np = find(objs, 'NetworkPolicy', vault);
      const before = np.spec.ingress.length;
      np.spec.ingress = np.spec.ingress.filter(
        (r: { from?: Array<{ podSelector?: { matchLabels?: Record<string, string> } }> }) =>
          !(r.from ?? []).some((p) => p.podSelector?.matchLabels?.app === cali),
      );
      if (np.spec.ingress.length !== before - 1) throw new Error('breakage: NetworkPolicy/vault has no single ingress rule for cali');
      return 'NetworkPolicy/vault spec.ingress';
    },
  },
  'env-name': {
    change: `${orbCore}'s manifest sets ORB_API_KEY where the gateway's config schema requires ORB_API_KEYS (a rename on one side only)`,
    tree: 'env',
    expect: new RegExp(`Deployment/${orbCore} container [\\w-]+ env: ORB_API_KEYS is required`),
    apply(objs) {
      const c = find(objs, 'Deployment', orbCore).spec.template.spec.containers[0];
      const e = c.env.find((x: { name: string }) => x.name === 'ORB_API_KEYS');
      if (!e) throw new Error(`breakage: Deployment/${orbCore} sets no ORB_API_KEYS`);
      e.name = 'ORB_API_KEY';
      return `Deployment/${orbCore} spec.template.spec.containers[0].env[ORB_API_KEYS].name`;
    },
  },
};

/**
 * Copies a rendered tree to `to` and applies one breakage to the copy, file by file (every other
 * byte stays as rendered). Returns the object and field it changed.
 */
export function breakTree(from: string, to: string, b: Breakage): string {
  cpSync(from, to, { recursive: true });
  const files = listYaml(to);
  const docs = files.map((f) => ({ f, docs: parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as K8sObject | null) }));
  const all = docs.flatMap((d) => d.docs.filter((o): o is K8sObject => !!o && typeof o === 'object' && 'kind' in o));
  const snapshot = docs.map((d) => JSON.stringify(d.docs));
  const changed = b.apply(all);
  docs.forEach((d, i) => {
    if (JSON.stringify(d.docs) === snapshot[i]) return;
    writeFileSync(d.f, d.docs.map((o) => stringify(o)).join('---\n'));
  });
  return changed;
}

function listYaml(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return listYaml(p);
    return /\.ya?ml$/.test(n) && n !== 'kustomization.yaml' ? [p] : [];
  });
}
