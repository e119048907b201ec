/** Test helpers: synthesize an environment in memory and look objects up. Not a test file. */
import { App, Testing, type Chart } from 'cdk8s';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as scheduling from 'kubernetes-models/scheduling.k8s.io/v1';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { EnvironmentConfig } from '../../charts/config';
import { buildEnvironment, buildTestPods } from '../../charts/orb-stack';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};

export interface Synthesized {
  /** Objects per file name (chart id), in file order. */
  readonly files: Record<string, K8sObject[]>;
  /** Every object of the stack (test pods excluded). */
  readonly objects: K8sObject[];
  /** The test-pods chart's objects. */
  readonly testPods: K8sObject[];
}

export function synthEnvironment(cfg: EnvironmentConfig): Synthesized {
  const app = Testing.app();
  const stack = buildEnvironment(app, cfg);
  const files: Record<string, K8sObject[]> = {};
  for (const [file, chart] of Object.entries(stack.charts)) files[file] = Testing.synth(chart as Chart) as K8sObject[];
  const testApp = Testing.app();
  const testPods = Testing.synth(buildTestPods(testApp, cfg)) as K8sObject[];
  return { files, objects: Object.values(files).flat(), testPods };
}

/** Full YAML of an environment exactly as `npm run synth` writes it (all files concatenated). */
export function synthYaml(cfg: EnvironmentConfig): string {
  const app = new App({ outdir: '/nonexistent' });
  buildEnvironment(app, cfg);
  const tests = new App({ outdir: '/nonexistent' });
  buildTestPods(tests, cfg);
  return app.synthYaml() + tests.synthYaml();
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const hit = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!hit) throw new Error(`no ${kind}/${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return hit;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, Record<string, any>> = {
  v1: core,
  'apps/v1': apps,
  'batch/v1': batch,
  'policy/v1': policy,
  'networking.k8s.io/v1': networking,
  'autoscaling/v2': autoscaling,
  'scheduling.k8s.io/v1': scheduling,
  'keda.sh/v1alpha1': keda,
  'monitoring.coreos.com/v1': monitoring,
};

/** Validates one object with its kubernetes-models class (schema types, required fields, enums). */
export function validateObject(obj: K8sObject): void {
  const group = MODELS[obj.apiVersion];
  const Model = group?.[obj.kind];
  if (!Model) throw new Error(`no kubernetes-models schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/** Pod specs of every workload (Deployment, StatefulSet, Job, CronJob) with the owner. */
export function podSpecs(objects: K8sObject[]): { owner: K8sObject; template: K8sObject['spec'] }[] {
  const out: { owner: K8sObject; template: K8sObject['spec'] }[] = [];
  for (const o of objects) {
    if (['Deployment', 'StatefulSet', 'Job'].includes(o.kind)) out.push({ owner: o, template: o.spec.template });
    if (o.kind === 'CronJob') out.push({ owner: o, template: o.spec.jobTemplate.spec.template });
  }
  return out;
}
