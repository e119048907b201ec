/**
 * Renders a workload's `env` from the same typed schemas the services read with `loadEnv`
 * (services/config/*): names come from the schema, values from the environment config, secret
 * fields only as `secretKeyRef`. A renamed variable therefore breaks synth, not production.
 */
import { PORTS, VAULT_ACL_SECRET_NAME } from '../services/contract';
import { renderEnvValue, type EnvSchema } from '../services/config/env';
import { VAULT_ENV } from '../services/config/vault';
import { k8s } from './k8s';

/** A Secret key a secret env field is read from. */
export interface SecretKeyRef {
  readonly secret: string;
  readonly key: string;
}

/** How each schema field gets its value in the manifest; unbound fields keep the service default. */
export interface EnvBinding<S extends EnvSchema> {
  /** Literal values (never for secret fields). */
  readonly values?: { readonly [K in keyof S]?: unknown };
  /** Secret fields: the Secret key they come from. */
  readonly secrets?: { readonly [K in keyof S]?: SecretKeyRef };
  /** Downward API field paths (`metadata.name`, `metadata.labels['…']`). */
  readonly fieldRefs?: { readonly [K in keyof S]?: string };
}

/** Env vars in schema order (stable diffs), validating each literal with the schema's own parser. */
export function renderEnv<S extends EnvSchema>(schema: S, binding: EnvBinding<S>): k8s.EnvVar[] {
  const out: k8s.EnvVar[] = [];
  const known = new Set(Object.keys(schema));
  for (const group of [binding.values, binding.secrets, binding.fieldRefs]) {
    for (const key of Object.keys(group ?? {})) {
      if (!known.has(key)) throw new Error(`env binding '${key}' is not a field of the schema (fields: ${[...known].join(', ')})`);
    }
  }
  for (const [key, spec] of Object.entries(schema)) {
    const value = (binding.values as Record<string, unknown> | undefined)?.[key];
    const secret = (binding.secrets as Record<string, SecretKeyRef | undefined> | undefined)?.[key];
    const fieldPath = (binding.fieldRefs as Record<string, string | undefined> | undefined)?.[key];
    const bound = [value !== undefined, secret !== undefined, fieldPath !== undefined].filter(Boolean).length;
    if (bound > 1) throw new Error(`env ${spec.name} is bound more than once`);
    if (spec.secret) {
      if (value !== undefined) throw new Error(`env ${spec.name} is secret: bind it to a Secret key, never a literal value`);
      if (secret) out.push({ name: spec.name, valueFrom: { secretKeyRef: { name: secret.secret, key: secret.key } } });
      else if (spec.default === undefined) throw new Error(`env ${spec.name} is a required secret: bind it to a Secret key`);
      continue;
    }
    if (secret) {
      out.push({ name: spec.name, valueFrom: { secretKeyRef: { name: secret.secret, key: secret.key } } });
    } else if (fieldPath !== undefined) {
      out.push({ name: spec.name, valueFrom: { fieldRef: { fieldPath } } });
    } else if (value !== undefined) {
      const raw = renderEnvValue(value);
      try {
        spec.parse(raw);
      } catch (err) {
        throw new Error(`env ${spec.name}=${JSON.stringify(raw)}: ${(err as Error).message}`);
      }
      out.push({ name: spec.name, value: raw });
    }
  }
  return out;
}

/** Where the services find the vault. */
export type VaultEndpoint =
  | {
      readonly mode: 'in-cluster';
      readonly serviceName: string;
      readonly port: number;
      /** host:port of the vault's Sentinels (a replicated vault); absent for a single node. */
      readonly sentinels?: readonly string[];
      /** Sentinel master-set name (with `sentinels`). */
      readonly sentinelMaster?: string;
      /** Secret with the ACL users' passwords. @default 'vault-acl' */
      readonly aclSecret?: string;
      /** Prefix of every ACL user name (the stack's name prefix). @default '' */
      readonly userPrefix?: string;
    }
  | {
      readonly mode: 'external';
      readonly host: string;
      readonly port: number;
      /** host:port of Sentinels; empty for a direct connection. */
      readonly sentinels: readonly string[];
      readonly sentinelMaster: string;
      readonly tls: boolean;
      /** Secret with the ACL users' passwords. @default 'vault-acl' */
      readonly aclSecret?: string;
      /** Prefix of every ACL user name (two stacks sharing one vault: their own users). @default '' */
      readonly userPrefix?: string;
    };

/** The Sentinels clients must go through, or undefined for a direct connection. */
export function vaultSentinels(endpoint: VaultEndpoint): { readonly sentinels: readonly string[]; readonly master: string } | undefined {
  const list = endpoint.sentinels ?? [];
  if (!list.length) return undefined;
  if (!endpoint.sentinelMaster) throw new Error(`vault endpoint has sentinels (${list.join(', ')}) but no 'sentinelMaster'`);
  return { sentinels: list, master: endpoint.sentinelMaster };
}

/** Secret holding every ACL user's password, key `<user>-password` (contract). */
export const VAULT_ACL_SECRET: string = VAULT_ACL_SECRET_NAME;

/** The Secret key holding an ACL user's password. */
export function vaultPasswordKey(user: string): string {
  return `${user}-password`;
}

/** VAULT_ENV of a component connecting as ACL `user`. */
export function vaultEnv(endpoint: VaultEndpoint, role: string): k8s.EnvVar[] {
  const user = `${endpoint.userPrefix ?? ''}${role}`;
  const password = { secret: endpoint.aclSecret ?? VAULT_ACL_SECRET, key: vaultPasswordKey(user) };
  if (endpoint.mode === 'in-cluster') {
    const sentinel = vaultSentinels(endpoint);
    return renderEnv(VAULT_ENV, {
      values: {
        host: endpoint.serviceName,
        port: endpoint.port,
        username: user,
        ...(sentinel ? { sentinels: [...sentinel.sentinels], sentinelMaster: sentinel.master } : {}),
      },
      secrets: { password },
    });
  }
  return renderEnv(VAULT_ENV, {
    values: {
      host: endpoint.host,
      port: endpoint.port,
      username: user,
      tls: endpoint.tls,
      ...(endpoint.sentinels.length ? { sentinels: [...endpoint.sentinels], sentinelMaster: endpoint.sentinelMaster } : {}),
    },
    secrets: { password },
  });
}

/** Downward API path of the StatefulSet pod-index label (Kubernetes >= 1.28). */
export const POD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']";

/** Fails synth when two env sources produce one name (POLICY S11). */
export function mergeEnv(...groups: k8s.EnvVar[][]): k8s.EnvVar[] {
  const seen = new Set<string>();
  const out: k8s.EnvVar[] = [];
  for (const v of groups.flat()) {
    if (seen.has(v.name)) throw new Error(`env ${v.name} is set twice`);
    seen.add(v.name);
    out.push(v);
  }
  return out;
}

// ---- role schemas the manifests render --------------------------------------------------------
// Each workload's env is the union of the schemas its process loads (runtime + role).
import { str } from '../services/config/env';
import { WORKER_ENV } from '../services/config/worker';
import { ASR_ENV } from '../services/config/asr';
import { TTS_ENV } from '../services/config/tts';
import { CORE_ENV } from '../services/config/core';
import { CALI_ENV } from '../services/config/cali';
import { SEED_ENV } from '../services/config/seed';
import { ACCEPT_ENV } from '../services/config/accept';

export const ASR_ROLE_ENV = { ...WORKER_ENV, ...ASR_ENV } as const;
export const TTS_ROLE_ENV = { ...WORKER_ENV, ...TTS_ENV } as const;
export const CORE_ROLE_ENV = { ...WORKER_ENV, ...CORE_ENV } as const;
export const CALI_ROLE_ENV = { ...WORKER_ENV, ...CALI_ENV } as const;
export const SEED_ROLE_ENV = SEED_ENV;

/**
 * The orb-smoke Job (`services/cli/orb.js smoke [--accept]`): the CLI reads ORB_URL and
 * ORB_API_KEY itself (it has no schema module), so those names are registered here; --accept
 * reads ACCEPT_ENV with loadEnv.
 */
export const SMOKE_ROLE_ENV = {
  url: str('ORB_URL', { doc: 'Base URL of the gateway under test', default: `http://127.0.0.1:${PORTS.http}` }),
  apiKey: str('ORB_API_KEY', { doc: 'API key the smoke test authenticates with', secret: true, default: '' }),
  ...ACCEPT_ENV,
} as const;

/** onnxruntime threads that fit a CPU limit ('2', '1500m'): whole cores, at least one. */
export function threadsFor(cpuLimit: string): number {
  const cores = cpuLimit.endsWith('m') ? Number(cpuLimit.slice(0, -1)) / 1000 : Number(cpuLimit);
  return Math.max(1, Math.floor(Number.isFinite(cores) ? cores : 1));
}
