/**
 * Facts both halves must agree on, defined once: the services read and write them, the
 * constructs render them into the manifests (names, ports, KEDA triggers, ACL users,
 * NetworkPolicies…). A change here changes the services, the manifests and the tests together.
 * This module imports nothing, so infra/ can depend on it without pulling in service code.
 */

// ---- component names ----------------------------------------------------------------------------

/**
 * The stack's components, by role: each is a workload's `app` label, its object names and its
 * node in the network graph. A stack rendered with a name prefix prefixes every one of them
 * (see {@link stackNames}).
 */
export const COMPONENTS = {
  orbCore: 'orb-core',
  vault: 'vault',
  whisperx: 'whisperx',
  xtts: 'xtts',
  coreQuorum: 'core4',
  cali: 'cali',
  seedVault: 'seed-vault',
  vaultBackup: 'vault-backup',
  orbSmoke: 'orb-smoke',
} as const;
export type ComponentRole = keyof typeof COMPONENTS;

/** The ConfigMap every service loads with envFrom (non-secret settings). */
export const ORB_CONFIG_NAME = 'orb-config';
/** The Secret holding every vault ACL user's password, key `<user>-password`. */
export const VAULT_ACL_SECRET_NAME = 'vault-acl';
/** The Secret holding the gateway's API keys (key `keys`). */
export const API_KEYS_SECRET_NAME = 'orb-api-keys';

/** Every name a stack renders, under one prefix (`''`: the default names). */
export interface StackNames {
  readonly prefix: string;
  /** The component `role`'s name. */
  readonly component: { readonly [R in ComponentRole]: string };
  readonly orbConfig: string;
  readonly vaultAclSecret: string;
  readonly apiKeysSecret: string;
  /** A vault ACL user's name (what VAULT_USERNAME holds and the ACL file declares). */
  vaultUser(user: string): string;
}

/** A prefix object names may take: a DNS-1123 label start, ending in `-` (e.g. `blue-`). */
export const NAME_PREFIX_PATTERN = /^([a-z]([a-z0-9-]{0,14}[a-z0-9])?-)?$/;

/** The names of a stack rendered under `prefix`. */
export function stackNames(prefix = ''): StackNames {
  if (!NAME_PREFIX_PATTERN.test(prefix)) {
    throw new Error(
      `namePrefix '${prefix}' must be empty or a lower-case DNS label of at most 16 characters followed by '-' (e.g. 'blue-')`,
    );
  }
  const component = Object.fromEntries(
    Object.entries(COMPONENTS).map(([role, name]) => [role, `${prefix}${name}`]),
  ) as StackNames['component'];
  return {
    prefix,
    component,
    orbConfig: `${prefix}${ORB_CONFIG_NAME}`,
    vaultAclSecret: `${prefix}${VAULT_ACL_SECRET_NAME}`,
    apiKeysSecret: `${prefix}${API_KEYS_SECRET_NAME}`,
    vaultUser: (user) => `${prefix}${user}`,
  };
}

// ---- ports --------------------------------------------------------------------------------------

/** Ports every side agrees on: the services' listeners, the Services, probes and NetworkPolicies. */
export const PORTS = {
  /** Every service's HTTP port (API, /livez, /readyz, /metrics), named {@link HTTP_PORT_NAME}. */
  http: 8080,
  /** The vault (Redis). */
  vault: 6379,
  /** The replicated vault's Sentinels. */
  sentinel: 26379,
  /** Cluster DNS. */
  dns: 53,
} as const;
/** Name of the HTTP port on every container and Service. */
export const HTTP_PORT_NAME = 'http';

// ---- the ACP bus ----------------------------------------------------------------------------------

/** The worker roles' job queues (a core's queue is {@link coreQueue}). */
export const ACP_QUEUES = { whisperx: 'whisperx', xtts: 'xtts', cali: 'cali' } as const;
export type AcpRoleQueue = (typeof ACP_QUEUES)[keyof typeof ACP_QUEUES];

/** Verdict core `ordinal`'s queue (`'*'`: the pattern of every core's). */
export function coreQueue(ordinal: number | '*'): string {
  return `core:${ordinal}`;
}

/** The consumer group every ACP job stream is read by (workers, and KEDA's lag trigger). */
export const ACP_CONSUMER_GROUP = 'workers';

/** The job stream of a queue: a worker role (`whisperx`, `cali`, …) or `core:<n>`. */
export function jobStreamKey(queue: string, keyPrefix = ''): string {
  return `${keyPrefix}acp:jobs:${queue}`;
}

// ---- vault ACL users ------------------------------------------------------------------------------

/** The vault's ACL users: one per component, plus the FUNCTION loader and the backup/probe user. */
export const VAULT_USERS = ['orb', 'whisperx', 'xtts', 'core', 'cali', 'seed', 'functions', 'backup'] as const;
export type VaultUser = (typeof VAULT_USERS)[number];

/**
 * The key families of the vault (docs/vault-keys.md): every key starts with VAULT_KEY_PREFIX and
 * one of these. ACL key patterns are built from them, so two stacks sharing one vault under
 * different key prefixes cannot read each other's keys.
 */
export const KEY_FAMILIES = ['identity:', 'session:', 'turn:', 'memory:', 'orb:', 'acp:'] as const;

// ---- the verdict quorum ---------------------------------------------------------------------------

/** Verdict cores and quorum by default: five cores, three agree. */
export const DEFAULT_CORES = 5;
export const DEFAULT_QUORUM = 3;

/**
 * The quorum rule: an odd number of cores (at least 3, so the "+1" core breaks a tie), and a
 * quorum above half of them and at most all of them. Returns the problems, each naming its field;
 * empty when the pair is valid.
 */
export function quorumProblems(cores: number, quorum: number): Array<{ field: 'cores' | 'quorum'; message: string }> {
  const out: Array<{ field: 'cores' | 'quorum'; message: string }> = [];
  if (!Number.isInteger(cores) || cores < 3 || cores % 2 === 0) out.push({ field: 'cores', message: 'must be an odd integer >= 3' });
  if (!Number.isInteger(quorum) || quorum > cores || quorum <= cores / 2) {
    out.push({ field: 'quorum', message: `must be an integer above half of cores (${cores}) and at most cores` });
  }
  return out;
}

/**
 * The vault's replica rule: one node, or an odd number >= 3 (a primary, replicas, and a Sentinel
 * in each pod, so a majority of Sentinels can always be found). The problem, or undefined.
 */
export function vaultReplicasProblem(replicas: number): string | undefined {
  if (!Number.isInteger(replicas) || (replicas !== 1 && (replicas < 3 || replicas % 2 === 0)))
    return 'must be 1 or an odd integer >= 3 (Sentinel needs a majority)';
  return undefined;
}

// ---- policy -----------------------------------------------------------------------------------------

/** Rule IDs (POLICY.md) an environment may exempt; every other rule holds everywhere. */
export { EXEMPTABLE_RULES, type ExemptableRule } from './policy-exemptions';

// ---- the public surface -------------------------------------------------------------------------
/** The client API's path prefix (REST and the WebSocket): the public Ingress routes it. */
export const PUBLIC_API_PREFIX = '/v1';

/**
 * The web client's files the gateway serves at `/` (web/dist, source maps aside). The public
 * Ingress routes exactly these and the API prefix, so /metrics, /livez and /readyz stay inside
 * the cluster; a test builds the web client and fails when this list and the build disagree.
 */
export const WEB_CLIENT_FILES: readonly string[] = [
  'index.html',
  'app.js',
  'orb.css',
  'capture-worklet.js',
  // The installable app: manifest, icons, and the app-shell service worker (scope /).
  'manifest.webmanifest',
  'sw.js',
  'icon-192.png',
  'icon-512.png',
  'icon-maskable-512.png',
];
