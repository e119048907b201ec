/** Shapes the policy engine works on: synthesized Kubernetes objects as plain JSON, and its verdicts. */

/** Every rule of ../shared/POLICY.md plus K1 (schema validity). */
export const RULE_IDS = [
  'R1',
  'R2',
  'I1',
  'I2',
  'P1',
  'P2',
  'P3',
  'S1',
  'S2',
  'S3',
  'S4',
  'S5',
  'S6',
  'S7',
  'S9',
  'S10',
  'S11',
  'A1',
  'A2',
  'A3',
  'A4',
  'A5',
  'A6',
  'A7',
  'N1',
  'N2',
  'N3',
  'N4',
  'M1',
  'M2',
  'M3',
  'M5',
  'M6',
  'B1',
  'K1',
] as const;

export type RuleId = (typeof RULE_IDS)[number];

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** One synthesized object, exactly as it appears in dist/<env>/*.yaml. */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  // Rules read arbitrary spec fields; each one narrows what it touches.
  readonly [field: string]: any;
}

/** A broken rule on one object. */
export interface Finding {
  readonly rule: RuleId;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly message: string;
}

/** What a rule may look at besides the object it checks. */
export interface RuleContext {
  /** Every object of the environment: cross-object rules (PDB, NetworkPolicy, HPA) look here. */
  readonly objects: readonly K8sObject[];
  /** Environment name (the dist/ folder): `prod`, `dev`, ... */
  readonly env: string;
  /** Per-environment strictness. */
  readonly profile: EnvProfile;
}

/** How strict the engine is for one environment. */
export interface EnvProfile {
  /** Rule IDs whose tool exemption annotations are honoured; any other exemption is a finding. */
  readonly exemptible: readonly RuleId[];
  /** I1: images must be pinned by `@sha256:` digest. */
  readonly requireDigests: boolean;
}

export interface Rule {
  readonly id: RuleId;
  /** One line: what the rule demands. */
  readonly title: string;
  /** Whether the rule has anything to say about this object (rows of the rule × object table). */
  applies(obj: K8sObject, ctx: RuleContext): boolean;
  /** Problems with the object; empty means pass. */
  check(obj: K8sObject, ctx: RuleContext): string[];
}

export type Verdict = 'pass' | 'fail' | 'exempt';

/** One cell of the rule × object table. */
export interface RuleResult {
  readonly rule: RuleId;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly verdict: Verdict;
  readonly messages: readonly string[];
}
