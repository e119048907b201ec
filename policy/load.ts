/** Reads synthesized manifests: dist/<env>/*.yaml, multi-document YAML. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { K8sObject } from './types';

/** Every object of a multi-document YAML text; empty documents are skipped, a parse error throws. */
export function parseManifests(text: string, source = '<text>'): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) out.push(...(v as K8sObject[]));
    else if (v.kind === 'List' && Array.isArray(v.items)) out.push(...(v.items as K8sObject[]));
    else out.push(v as K8sObject);
  }
  return out;
}

/** kustomize's own file in each dist folder: an input of `kubectl apply -k`, not a cluster object. */
export const KUSTOMIZATION_FILE = 'kustomization.yaml';

function yamlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return yamlFiles(p);
      return /\.ya?ml$/.test(e.name) && e.name !== KUSTOMIZATION_FILE ? [p] : [];
    })
    .sort();
}

/** Objects of one environment folder, each file's objects in order. */
export function loadEnvironment(dir: string): { objects: K8sObject[]; files: string[] } {
  const files = yamlFiles(dir);
  return { objects: files.flatMap((f) => parseManifests(fs.readFileSync(f, 'utf8'), f)), files };
}

/** Environment names: the folders of `distDir` that hold YAML. */
export function listEnvironments(distDir: string): string[] {
  if (!fs.existsSync(distDir)) return [];
  return fs
    .readdirSync(distDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && yamlFiles(path.join(distDir, e.name)).length > 0)
    .map((e) => e.name)
    .sort();
}
