/**
 * Every variable a service's config schema requires is set by its manifest, and every name a
 * manifest sets is one a schema reads (a name no schema reads is a typo or a one-sided rename: the
 * service would run on its default). Checked on rendered objects, before any pod starts, by
 * `npm run e2e:pods` and by test/infra/running-contract.test.ts.
 */
import { ConfigError, loadEnv, type EnvSchema } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { WORKER_ENV } from '../../services/config/worker';
import { ASR_ENV } from '../../services/config/asr';
import { TTS_ENV } from '../../services/config/tts';
import { CORE_ENV } from '../../services/config/core';
import { CALI_ENV } from '../../services/config/cali';
import { SEED_ENV } from '../../services/config/seed';
import type { K8sObject } from './manifests';

export interface EnvProblem {
  object: string;
  container: string;
  problem: string;
}

/** The env schemas a container's command loads (the service entry points and worker roles). */
export function schemasFor(command: readonly string[]): EnvSchema[] {
  const cmd = command.join(' ');
  if (cmd.includes('services/orb/main')) return [ORB_ENV, VAULT_ENV];
  if (cmd.includes('services/seed/main')) return [SEED_ENV, VAULT_ENV];
  const role = /services\/workers\/main\.js (\w+)/.exec(cmd)?.[1];
  const roleEnv: Record<string, EnvSchema> = { whisperx: ASR_ENV, xtts: TTS_ENV, core: CORE_ENV, cali: CALI_ENV };
  if (role && roleEnv[role]) return [WORKER_ENV, VAULT_ENV, roleEnv[role]];
  return [];
}

/** Checks every service container of the objects; `checked` counts the containers a schema covers. */
export function envProblems(objects: readonly K8sObject[]): { checked: number; problems: EnvProblem[] } {
  const configMaps = new Map(
    objects.filter((o) => o.kind === 'ConfigMap').map((c) => [c.metadata.name, (c.data ?? {}) as Record<string, string>]),
  );
  const problems: EnvProblem[] = [];
  let checked = 0;
  for (const { owner, template } of podTemplates(objects)) {
    for (const c of template?.spec?.containers ?? []) {
      const schemas = schemasFor(c.command ?? []);
      if (!schemas.length) continue;
      const object = `${owner.kind}/${owner.metadata.name}`;
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef?.name) ?? {});
      for (const e of c.env ?? []) env[e.name] = e.value ?? fieldValue(owner, e.valueFrom?.fieldRef?.fieldPath) ?? secretValue(e.name);
      // POD_NAME is set on every container by the hardened pod spec (log context), read or not.
      const known = new Set(['POD_NAME', ...schemas.flatMap((sc) => Object.values(sc).map((v) => v.name))]);
      for (const e of c.env ?? [])
        if (!known.has(e.name))
          problems.push({ object, container: c.name, problem: `${e.name} is set but no config schema of this service reads it` });
      for (const schema of schemas) {
        try {
          loadEnv(schema, env);
        } catch (err) {
          const each = err instanceof ConfigError ? err.problems : [(err as Error).message];
          for (const problem of each) problems.push({ object, container: c.name, problem });
        }
      }
      checked += 1;
    }
  }
  return { checked, problems };
}

function podTemplates(objects: readonly K8sObject[]): Array<{ owner: K8sObject; template: K8sObject['spec'] }> {
  const out: Array<{ owner: K8sObject; template: K8sObject['spec'] }> = [];
  for (const o of objects) {
    if (['Deployment', 'StatefulSet', 'Job'].includes(o.kind)) out.push({ owner: o, template: o.spec.template });
    if (o.kind === 'CronJob') out.push({ owner: o, template: o.spec.jobTemplate.spec.template });
  }
  return out;
}

/** What the downward API gives the first pod of a workload. */
function fieldValue(owner: K8sObject, path: string | undefined): string | undefined {
  if (!path) return undefined;
  if (path === 'metadata.name') return `${owner.metadata.name}-0`;
  if (path === "metadata.labels['apps.kubernetes.io/pod-index']") return '0';
  return 'x';
}

/** A stand-in of the right shape for a Secret-held value (the check reads names and shapes, not secrets). */
function secretValue(name: string): string {
  return name === 'ORB_API_KEYS' ? `dev:sha256:${'a'.repeat(64)}` : 'from-a-secret';
}
