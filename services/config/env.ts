/**
 * One typed, validated schema per service role for the environment variables it reads.
 * The same definitions render the env of the manifests (infra/), so a renamed variable breaks
 * the build, not production. This module must stay dependency-free: infra/ imports it.
 */

export interface EnvVar<T> {
  /** The environment variable's name, e.g. `REDIS_HOST`. */
  readonly name: string;
  /** One sentence: what it sets. Rendered into docs. */
  readonly doc: string;
  /** Used when the variable is unset or empty. Undefined means required. */
  readonly default?: T;
  /** Never a literal value in a manifest: rendered as a `secretKeyRef`. */
  readonly secret?: boolean;
  /** Turns the raw string into a value or throws an Error whose message says what is wrong. */
  readonly parse: (raw: string) => T;
}

export type EnvSchema = { readonly [key: string]: EnvVar<unknown> };
export type EnvValues<S extends EnvSchema> = { -readonly [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never };

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates every variable of `schema`, reporting all problems at once. */
export function loadEnv<S extends EnvSchema>(schema: S, env: NodeJS.ProcessEnv = process.env): EnvValues<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const raw = env[spec.name];
    if (raw === undefined || raw === '') {
      if (spec.default === undefined) problems.push(`${spec.name} is required (${spec.doc})`);
      else out[key] = spec.default;
      continue;
    }
    try {
      out[key] = spec.parse(raw);
    } catch (err) {
      const shown = spec.secret ? '<redacted>' : JSON.stringify(raw);
      problems.push(`${spec.name}=${shown}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out as EnvValues<S>;
}

// ---- field constructors ---------------------------------------------------------------------

type Opts<T> = { doc: string; default?: T; secret?: boolean };

export function str(name: string, o: Opts<string>): EnvVar<string> {
  return { name, ...o, parse: (raw) => raw };
}

export function int(name: string, o: Opts<number> & { min?: number; max?: number }): EnvVar<number> {
  const { min, max, ...rest } = o;
  return {
    name,
    ...rest,
    parse: (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error('must be an integer');
      const n = Number(raw);
      if (min !== undefined && n < min) throw new Error(`must be at least ${min}`);
      if (max !== undefined && n > max) throw new Error(`must be at most ${max}`);
      return n;
    },
  };
}

export function num(name: string, o: Opts<number> & { min?: number; max?: number }): EnvVar<number> {
  const { min, max, ...rest } = o;
  return {
    name,
    ...rest,
    parse: (raw) => {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new Error('must be a number');
      if (min !== undefined && n < min) throw new Error(`must be at least ${min}`);
      if (max !== undefined && n > max) throw new Error(`must be at most ${max}`);
      return n;
    },
  };
}

export function bool(name: string, o: Opts<boolean>): EnvVar<boolean> {
  return {
    name,
    ...o,
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new Error('must be true or false');
    },
  };
}

export function oneOf<T extends string>(name: string, values: readonly T[], o: Opts<T>): EnvVar<T> {
  return {
    name,
    ...o,
    parse: (raw) => {
      if (!(values as readonly string[]).includes(raw)) throw new Error(`must be one of ${values.join(', ')}`);
      return raw as T;
    },
  };
}

export function list(name: string, o: Opts<string[]>): EnvVar<string[]> {
  return {
    name,
    ...o,
    parse: (raw) =>
      raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
  };
}

/** Renders a value the way `parse` reads it back (used by infra/ to write env values). */
export function renderEnvValue(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}
