/**
 * The pod network: one "node" network namespace holding a bridge, and one network namespace per
 * pod with a veth to that bridge. The node namespace has no uplink and the pods no default route,
 * so no packet can leave the machine; addresses come from 198.18.0.0/16 (RFC 2544's benchmarking
 * range, never routed on the internet and never a LAN's), pods from .1.x up, Services from .200.x.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './sh';

export const NET_PREFIX = '198.18';
export const NODE_IP = `${NET_PREFIX}.0.1`;

export class PodNetwork {
  private nextPod = 0;
  private nextSvc = 0;
  private nextVeth = 0;
  readonly nodeNs: string;

  constructor(readonly tag: string) {
    this.nodeNs = `${tag}-node`;
  }

  /** Creates the node namespace and its bridge (removing leftovers of an earlier run first). */
  async create(): Promise<void> {
    await this.destroyAll();
    await run('ip', ['netns', 'add', this.nodeNs]);
    await this.ns(this.nodeNs, ['ip', 'link', 'set', 'lo', 'up']);
    await this.ns(this.nodeNs, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    await this.ns(this.nodeNs, ['ip', 'addr', 'add', `${NODE_IP}/16`, 'dev', 'br0']);
    await this.ns(this.nodeNs, ['ip', 'link', 'set', 'br0', 'up']);
    // Bridged frames must not go through the node's own netfilter hooks (br_netfilter): policy is
    // enforced in each pod's namespace, where the CNI plugins of real clusters also apply it.
    await this.ns(this.nodeNs, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  }

  allocPodIp(): string {
    const n = ++this.nextPod;
    if (n > 250 * 100) throw new Error('pod address range exhausted');
    return `${NET_PREFIX}.${1 + Math.floor(n / 250)}.${(n % 250) + 2}`;
  }

  allocServiceIp(): string {
    const n = this.nextSvc++;
    return `${NET_PREFIX}.${200 + Math.floor(n / 250)}.${(n % 250) + 10}`;
  }

  podNs(podKey: string): string {
    return `${this.tag}-${podKey}`.slice(0, 200);
  }

  /** Creates a pod's namespace, wires its eth0 to the bridge and writes its resolv.conf/hosts. */
  async addPod(podKey: string, ip: string, dns: { server: string; search: string[] }, hostname: string): Promise<string> {
    const ns = await this.wirePod(podKey, ip);
    await this.ns(ns, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc: the pod's own DNS and hosts.
    const etc = join('/etc/netns', ns);
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'resolv.conf'), `nameserver ${dns.server}\nsearch ${dns.search.join(' ')}\noptions ndots:5\n`);
    writeFileSync(join(etc, 'hosts'), `127.0.0.1\tlocalhost\n${ip}\t${hostname}\n`);
    writeFileSync(join(etc, 'hostname'), `${hostname}\n`);
    return ns;
  }

  /** A pod namespace with its eth0 on the bridge (no DNS files: `addPod` adds them). */
  async wirePod(podKey: string, ip: string): Promise<string> {
    const ns = this.podNs(podKey);
    await run('ip', ['netns', 'add', ns]);
    const veth = `vp${(++this.nextVeth).toString(36)}`;
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', this.nodeNs, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', this.nodeNs, 'link', 'set', veth, 'master', 'br0', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    return ns;
  }

  async removePod(podKey: string): Promise<void> {
    const ns = this.podNs(podKey);
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    rmSync(join('/etc/netns', ns), { recursive: true, force: true });
  }

  /** Deletes every namespace of this tag (also those an earlier, killed runner left behind). */
  async destroyAll(): Promise<void> {
    const { stdout } = await run('ip', ['netns', 'list'], { allowFail: true });
    for (const line of stdout.split('\n')) {
      const name = line.split(' ')[0];
      if (name && (name === this.nodeNs || name.startsWith(`${this.tag}-`))) {
        await run('ip', ['netns', 'del', name], { allowFail: true });
        rmSync(join('/etc/netns', name), { recursive: true, force: true });
      }
    }
  }

  ns(ns: string, argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', ns, ...argv], { input });
  }
}
