/**
 * Resource-level and field-level diff of two renderings of the manifests, as markdown a reviewer
 * reads at the top of a pull request.
 */
import { structuredPatch } from 'diff';
import type { K8sObject } from './types';

/** Objects of every environment: env name → objects. */
export type Rendering = ReadonlyMap<string, readonly K8sObject[]>;

export interface FieldChange {
  /** Dotted path; list items with a `name` are addressed by it: `containers[orb-field].image`. */
  readonly path: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

export interface ResourceDiff {
  readonly env: string;
  /** `kind/namespace/name` (namespace `-` when cluster-scoped). */
  readonly id: string;
  readonly change: 'added' | 'removed' | 'changed';
  readonly fields: readonly FieldChange[];
}

export function resourceId(o: K8sObject): string {
  return `${o.kind}/${o.metadata?.namespace ?? '-'}/${o.metadata?.name ?? '<unnamed>'}`;
}

/** Keys used to match list items across renderings, in order of preference. */
const ITEM_KEYS = ['name', 'mountPath', 'containerPort', 'alert', 'record'];

function itemKey(list: unknown[]): string | undefined {
  if (list.length === 0 || !list.every((x) => x && typeof x === 'object' && !Array.isArray(x))) return undefined;
  for (const k of ITEM_KEYS) {
    const vals = list.map((x) => (x as Record<string, unknown>)[k]);
    if (vals.every((v) => typeof v === 'string' || typeof v === 'number') && new Set(vals).size === vals.length) return k;
  }
  return undefined;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function diffValues(path: string, a: unknown, b: unknown, out: FieldChange[]): void {
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  // A map appearing or disappearing whole (annotations, labels, data) reads best key by key;
  // a whole list item (a new env entry) reads best as one value.
  const flatMap = (v: unknown) => isPlain(v) && Object.values(v).every((x) => x === null || typeof x !== 'object');
  if (!path.endsWith(']') && ((a === undefined && flatMap(b)) || (b === undefined && flatMap(a)))) {
    diffValues(path, a ?? {}, b ?? {}, out);
    return;
  }
  if (isPlain(a) && isPlain(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      diffValues(path ? `${path}.${k}` : k, a[k], b[k], out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const key = itemKey(a) ?? itemKey(b);
    if (key && itemKey(a) === itemKey(b)) {
      const byKey = (l: unknown[]) => new Map(l.map((x) => [String((x as Record<string, unknown>)[key]), x]));
      const ma = byKey(a);
      const mb = byKey(b);
      for (const k of [...new Set([...ma.keys(), ...mb.keys()])]) diffValues(`${path}[${k}]`, ma.get(k), mb.get(k), out);
      return;
    }
    if (a.length === b.length) {
      a.forEach((x, i) => diffValues(`${path}[${i}]`, x, b[i], out));
      return;
    }
  }
  out.push({ path, before: a, after: b });
}

/** Field changes between two versions of one object. */
export function diffObject(before: K8sObject, after: K8sObject): FieldChange[] {
  const out: FieldChange[] = [];
  diffValues('', before, after, out);
  return out;
}

/** Every added, removed and changed resource, per environment, sorted. */
export function diffRenderings(before: Rendering, after: Rendering): ResourceDiff[] {
  const out: ResourceDiff[] = [];
  for (const env of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = new Map((before.get(env) ?? []).map((o) => [resourceId(o), o]));
    const a = new Map((after.get(env) ?? []).map((o) => [resourceId(o), o]));
    for (const id of [...new Set([...b.keys(), ...a.keys()])].sort()) {
      const ob = b.get(id);
      const oa = a.get(id);
      if (!ob && oa) out.push({ env, id, change: 'added', fields: [] });
      else if (ob && !oa) out.push({ env, id, change: 'removed', fields: [] });
      else if (ob && oa) {
        const fields = diffObject(ob, oa);
        if (fields.length > 0) out.push({ env, id, change: 'changed', fields });
      }
    }
  }
  return out;
}

const MAX_CELL = 160;

/** A multi-line string (a script, a config file) reads better as a line diff than as two cut-off cells. */
function isMultiline(v: unknown): v is string {
  return typeof v === 'string' && v.includes('\n');
}

function lineDiff(path: string, before: string, after: string): string[] {
  const patch = structuredPatch(`before/${path}`, `after/${path}`, before, after, '', '', { context: 2 });
  const out = ['', `\`${path}\`:`, '', '```diff'];
  for (const h of patch.hunks) out.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`, ...h.lines);
  out.push('```');
  return out;
}

function cell(v: unknown): string {
  if (v === undefined) return '_(absent)_';
  let s = JSON.stringify(v);
  if (s.length > MAX_CELL) s = `${s.slice(0, MAX_CELL - 1)}…`;
  // Backticks and pipes would end the code span or the table cell.
  return `\`${s.replaceAll('`', "'").replaceAll('|', '\\|')}\``;
}

export interface MarkdownOptions {
  /** What the left side is, e.g. `origin/main`. */
  readonly baseLabel: string;
  /** What the right side is. @default working tree */
  readonly headLabel?: string;
  /** Lines shown before the diff (warnings about a side that could not be rendered). */
  readonly notes?: readonly string[];
}

const MARK = { added: '➕ added', removed: '➖ removed', changed: '✏️ changed' } as const;

export function renderMarkdown(diffs: readonly ResourceDiff[], envs: readonly string[], opts: MarkdownOptions): string {
  const lines = [`## Manifest diff: \`${opts.baseLabel}\` → ${opts.headLabel ?? 'working tree'}`, ''];
  for (const n of opts.notes ?? []) lines.push(`> ${n}`, '');
  if (diffs.length === 0) {
    lines.push(`No resource changes in ${envs.length ? envs.join(', ') : 'any environment'}.`);
    return lines.join('\n');
  }
  const count = (env: string, c: ResourceDiff['change']) => diffs.filter((d) => d.env === env && d.change === c).length;
  lines.push('| env | added | removed | changed |', '|---|---:|---:|---:|');
  for (const env of envs) lines.push(`| ${env} | ${count(env, 'added')} | ${count(env, 'removed')} | ${count(env, 'changed')} |`);
  for (const env of envs) {
    const mine = diffs.filter((d) => d.env === env);
    if (mine.length === 0) continue;
    lines.push('', `### ${env}`);
    for (const change of ['added', 'removed'] as const) {
      const list = mine.filter((d) => d.change === change);
      if (list.length === 0) continue;
      lines.push('', `**${MARK[change]}**`, '');
      for (const d of list) lines.push(`- \`${d.id}\``);
    }
    for (const d of mine.filter((x) => x.change === 'changed')) {
      lines.push('', `#### ${MARK.changed} \`${d.id}\``, '', '| field | before | after |', '|---|---|---|');
      for (const f of d.fields) lines.push(`| \`${f.path}\` | ${cell(f.before)} | ${cell(f.after)} |`);
      for (const f of d.fields) if (isMultiline(f.before) && isMultiline(f.after)) lines.push(...lineDiff(f.path, f.before, f.after));
    }
  }
  return lines.join('\n');
}
