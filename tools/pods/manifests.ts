/**
 * Reads a rendered environment (dist/<env>/*.yaml, and its test/ folder on demand) into plain
 * Kubernetes objects, and answers the questions the runner asks of them: which workloads, which
 * Services, which NetworkPolicies, which ConfigMaps.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runSync } from './sh';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};

/** Every object of the YAML files directly in `dir` (sorted by file name, the apply order). */
export function loadDir(dir: string): K8sObject[] {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && statSync(join(dir, f)).isFile() && f !== 'kustomization.yaml')
    .sort();
  const out: K8sObject[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${join(dir, f)}: ${doc.errors[0].message}`);
      const obj = doc.toJS() as K8sObject | null;
      if (obj && obj.kind) out.push(obj);
    }
  }
  return out;
}

/**
 * The folder of a rendered environment: the committed dist/<env>, or else a variant
 * (charts/environments.ts VARIANTS, which dist/ does not hold) rendered now by the synth entry
 * into `<outRoot>/<env>`. An unknown name fails with the synth's list of environments and variants.
 */
export function renderedEnv(repo: string, env: string, outRoot: string): string {
  const committed = join(repo, 'dist', env);
  if (existsSync(committed)) return committed;
  runSync('env', [`SYNTH_ENVS=${env}`, `SYNTH_OUT=${outRoot}`, process.execPath, '--import', 'tsx', join(repo, 'charts/main.ts')]);
  return join(outRoot, env);
}

export const ref = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`;

/** matchLabels / matchExpressions against a label set, as the API server evaluates a LabelSelector. */
export function selects(selector: any, labels: Record<string, string> = {}): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const val = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !e.values.includes(val)) return false;
        break;
      case 'NotIn':
        if (has && e.values.includes(val)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`unsupported selector operator ${e.operator}`);
    }
  }
  return true;
}

/** A Service's plain `selector` map (not a LabelSelector). */
export function serviceSelects(svc: K8sObject, labels: Record<string, string>): boolean {
  const sel = svc.spec?.selector as Record<string, string> | undefined;
  if (!sel || Object.keys(sel).length === 0) return false;
  return Object.entries(sel).every(([k, v]) => labels[k] === v);
}

export function byKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}
