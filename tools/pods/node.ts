/**
 * The runner's own process lives in the node namespace, as a kubelet lives on its node: probes
 * then come from the node's address, and pods are reached over the bridge. `enterNode` re-runs the
 * current command inside a fresh node namespace and, when it ends, removes every namespace it made.
 */
import { spawnSync } from 'node:child_process';
import { has } from './sh';
import { PodNetwork } from './network';

export function preflight(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const [cmd, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['setpriv', 'util-linux'],
    ['nsenter', 'util-linux'],
    ['unshare', 'util-linux'],
    ['redis-server', 'redis-server'],
  ]) {
    if (!has(cmd)) missing.push(`${cmd} (apt-get install ${pkg})`);
  }
  if (missing.length) throw Object.assign(new Error(`the pod runner needs ${missing.join(', ')}`), { missing });
}

/** True when this process already runs inside the node namespace of `tag`. */
export function insideNode(tag: string): boolean {
  return process.env.ORBPODS_NODE === tag;
}

/** Re-executes this process inside the node namespace; returns its exit code after cleaning up. */
export async function enterNode(tag: string): Promise<number> {
  const net = new PodNetwork(tag);
  await net.create();
  try {
    const r = spawnSync('ip', ['netns', 'exec', net.nodeNs, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, ORBPODS_NODE: tag },
    });
    return r.status ?? 1;
  } finally {
    await net.destroyAll();
  }
}
