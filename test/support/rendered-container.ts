/**
 * Runs a container exactly as a manifest renders it, the way the kubelet would: its own command
 * (build/…js mapped to the TypeScript source run by tsx, the image's compiled copy of the same file),
 * its own env with secretKeyRef resolved from the given Secrets and fieldRef metadata.name from the
 * pod name, and its volume mounts mapped to local folders. Nothing of the test's env leaks in. Not a test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { K8sObject } from '../infra/manifests';

export const REPO_ROOT = join(__dirname, '..', '..');

export interface KubeletStandIn {
  /** mountPath -> local folder. */
  readonly mounts?: Record<string, string>;
  /** `secret/key` -> value; a missing one fails like CreateContainerConfigError. */
  readonly secrets?: Record<string, string>;
  readonly podName?: string;
  /** Overrides no manifest sets (e.g. REDIS_URL to reach the test vault); listed so the test says so. */
  readonly extraEnv?: Record<string, string>;
}

/** `['node', 'build/services/x/main.js', …args]` -> the source file tsx runs, checked to exist. */
export function sourceCommand(command: readonly string[]): string[] {
  const [bin, script, ...rest] = command;
  const m = /^build\/(.+)\.js$/.exec(script ?? '');
  if (bin !== 'node' || !m) throw new Error(`not a node build/ entry: ${JSON.stringify(command)}`);
  const source = `${m[1]}.ts`;
  if (!existsSync(join(REPO_ROOT, source))) throw new Error(`${script} has no source ${source}`);
  return [process.execPath, '--import', 'tsx', source, ...rest];
}

function remap(value: string, mounts: Record<string, string>): string {
  for (const [path, local] of Object.entries(mounts)) {
    if (value === path || value.startsWith(`${path}/`)) return local + value.slice(path.length);
  }
  return value;
}

export function containerEnv(container: K8sObject, k: KubeletStandIn): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = remap(e.value, k.mounts ?? {});
    else if (e.valueFrom?.secretKeyRef) {
      const ref = `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`;
      const v = k.secrets?.[ref];
      if (v === undefined) throw new Error(`secret ${ref} (env ${e.name}) not found`);
      env[e.name] = v;
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = k.podName ?? 'pod-0';
    else throw new Error(`env ${e.name}: unsupported source ${JSON.stringify(e.valueFrom)}`);
  }
  return { ...env, ...k.extraEnv };
}

/** Spawns the container's command; stdout+stderr are collected in `output`. */
export function runContainer(
  container: K8sObject,
  k: KubeletStandIn,
): { child: ChildProcess; output: () => string; exit: Promise<number> } {
  const [bin, ...args] = sourceCommand(container.command);
  const child = spawn(bin, args, { cwd: REPO_ROOT, env: containerEnv(container, k), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return { child, output: () => out, exit };
}
