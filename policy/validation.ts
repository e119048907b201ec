/**
 * The policy engine as a cdk8s-cli validation plugin, so a plain `cdk8s synth` with findings
 * fails. cdk8s.yaml names the local package ./policy/cdk8s-plugin (class PolicyValidation).
 */
import * as path from 'node:path';
import type { Validation, ValidationContext } from 'cdk8s-cli/lib/plugins';
import { runPolicy } from './engine';
import { RULES } from './rules';
import type { K8sObject } from './types';

export interface PolicyValidationProps {
  /**
   * Output folder of the synth, to read the environment from `<output>/<env>/…` paths.
   * @default dist
   */
  readonly output?: string;
  /**
   * Environment of manifests not under `<output>/<env>/`.
   * @default prod (the strictest profile)
   */
  readonly env?: string;
}

/** Environment of a manifest path: the folder right under the output folder. */
export function envOfManifest(manifest: string, output: string, fallback: string): string {
  const rel = path.relative(path.resolve(output), path.resolve(manifest));
  const parts = rel.split(path.sep);
  return !rel.startsWith('..') && parts.length > 1 ? parts[0] : fallback;
}

interface EnvManifests {
  readonly objects: K8sObject[];
  readonly fileOf: Map<K8sObject, string>;
}

export class PolicyValidation implements Validation {
  private readonly output: string;
  private readonly env: string;

  constructor(props: PolicyValidationProps = {}) {
    this.output = props.output ?? 'dist';
    this.env = props.env ?? 'prod';
  }

  public async validate(context: ValidationContext): Promise<void> {
    // Cross-object rules (PDBs, NetworkPolicies, HPAs) need all of an environment at once.
    const byEnv = new Map<string, EnvManifests>();
    for (const manifest of context.manifests) {
      const env = envOfManifest(manifest, this.output, this.env);
      const entry: EnvManifests = byEnv.get(env) ?? { objects: [], fileOf: new Map() };
      byEnv.set(env, entry);
      for (const o of context.parseManifest(manifest) as K8sObject[]) {
        if (!o) continue;
        entry.objects.push(o);
        entry.fileOf.set(o, manifest);
      }
    }
    let findings = 0;
    const summary: Record<string, string> = {};
    for (const [env, { objects, fileOf }] of [...byEnv].sort(([a], [b]) => a.localeCompare(b))) {
      const report = runPolicy(objects, { env });
      findings += report.findings.length;
      summary[env] = `${report.findings.length} finding(s), ${report.exemptions.length} exemption(s), ${objects.length} objects`;
      context.logger.log(`policy ${env}: ${summary[env]}`);
      for (const rule of RULES) {
        const mine = report.findings.filter((f) => f.rule === rule.id);
        if (mine.length === 0) continue;
        const byObject = new Map<string, typeof mine>();
        for (const f of mine) {
          const key = `${f.kind}/${f.namespace ?? ''}/${f.name}`;
          byObject.set(key, [...(byObject.get(key) ?? []), f]);
        }
        context.report.addViolation({
          ruleName: `${rule.id} [${env}] ${rule.title}`,
          recommendation: rule.title,
          fix: `see POLICY.md rule ${rule.id}; run 'npm run policy ${env}' for the table (only dev may exempt I2, A1, A7, N4)`,
          violatingResources: [...byObject.values()].map((fs) => {
            const obj = objects.find(
              (o) => o.kind === fs[0].kind && o.metadata?.name === fs[0].name && o.metadata?.namespace === fs[0].namespace,
            );
            return {
              resourceName: fs[0].name,
              locations: fs.map((f) => `${f.kind}/${f.name}: ${f.message}`),
              manifestPath: (obj && fileOf.get(obj)) ?? '',
            };
          }),
        });
      }
    }
    context.report.submit(findings === 0 ? 'success' : 'failure', summary);
  }
}
