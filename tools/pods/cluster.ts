/**
 * The controllers of a one-node cluster: Deployments, StatefulSets (ordered, stable names and
 * claims), Jobs (backoffLimit, activeDeadlineSeconds), CronJobs on demand; Services and DNS kept
 * in step with pod readiness; NetworkPolicies enforced in every pod's namespace.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { byKind, K8sObject, loadDir, ref, selects } from './manifests';
import { ImageTable } from './images';
import { HubEndpoint, inClusterHubs, loadHubRepos, tinyHubSpecs } from './model-hub';
import { NODE_IP, PodNetwork } from './network';
import { Pod, PodContext } from './pod';
import { DropRecord, Namespace, NetPod, nftScript, parseDrops, podPolicy } from './policy';
import { CLUSTER_DOMAIN, dnsRecords, serviceLinkEnv, serviceNat, SvcEntry, SvcPod } from './services';
import { run, runSync, sleep } from './sh';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Kinds the runner accepts without running them, and why. Anything else is an error. */
export const NOT_EMULATED: Record<string, string> = {
  ServiceAccount: 'no API server: tokens are not mounted (every workload sets automount off anyway)',
  PodDisruptionBudget: 'no evictions on one node',
  HorizontalPodAutoscaler: 'no metrics: the target starts at minReplicas and is not scaled on CPU',
  PriorityClass: 'one node: no preemption',
  Ingress: 'no ingress controller: the Ingress paths are checked from the manifest',
  ScaledObject: 'no KEDA: the triggers are checked against the running vault by e2e:pods',
  ServiceMonitor: 'no Prometheus operator: the scraped ports and paths are checked by e2e:pods',
  PrometheusRule: 'no Prometheus: the rules are checked by promtool in the test suite',
  PersistentVolumeClaim: 'a claim is a directory that survives pod restarts',
  Role: 'no API server',
  RoleBinding: 'no API server',
};
const RUN_KINDS = new Set(['Namespace', 'ConfigMap', 'Secret', 'Service', 'NetworkPolicy', 'Deployment', 'StatefulSet', 'Job', 'CronJob']);

export interface ClusterOptions {
  env: string;
  dist: string;
  repo: string;
  stateDir: string;
  tag: string;
  log?: (s: string) => void;
}
export interface PodRow {
  pod: string;
  owner: string;
  phase: string;
  ready: boolean;
  readyAfterS?: number;
  restarts: number;
  ip: string;
  reason?: string;
}

interface Workload {
  obj: K8sObject;
  replicas: number;
  pods: Pod[];
}

export class Cluster {
  readonly objects: K8sObject[];
  readonly net: PodNetwork;
  readonly images: ImageTable;
  readonly pods = new Map<string, Pod>();
  readonly workloads = new Map<string, Workload>();
  readonly notes: string[] = [];
  private svc: SvcEntry[] = [];
  private namespaces: Namespace[] = [];
  private secrets: Record<string, Record<string, string>> = {};
  private standIns: Array<{ pod: NetPod; proc?: ChildProcess; netns: string }> = [];
  /** Model hubs the manifests fetch from: each gets a stand-in pod and Service (model-hub.ts). */
  readonly hubs: HubEndpoint[];
  private dirty = false;
  private syncing?: Promise<void>;
  private policiesFor = '';
  private nftReady = new Set<string>();
  readonly started = Date.now();
  readonly log: (s: string) => void;
  dnsIp = '';

  constructor(readonly opts: ClusterOptions) {
    this.log = opts.log ?? ((s) => process.stdout.write(`${s}\n`));
    this.objects = loadDir(opts.dist);
    this.net = new PodNetwork(opts.tag);
    this.images = new ImageTable(opts.repo, opts.stateDir);
    for (const o of this.objects) this.checkKind(o);
    this.hubs = inClusterHubs(this.objects);
  }

  private checkKind(o: K8sObject): void {
    if (!RUN_KINDS.has(o.kind) && !NOT_EMULATED[o.kind])
      throw new Error(`${ref(o)}: kind ${o.kind} is neither run nor knowingly skipped by the pod runner`);
  }

  get namespace(): string {
    return (
      byKind(this.objects, 'Namespace')[0]?.metadata.name ?? this.objects.find((o) => o.metadata.namespace)?.metadata.namespace ?? 'default'
    );
  }

  // ---- bring-up ------------------------------------------------------------------------------

  async up(): Promise<void> {
    mkdirSync(this.opts.stateDir, { recursive: true });
    for (const o of this.objects) if (NOT_EMULATED[o.kind]) this.notes.push(`${ref(o)} not run: ${NOT_EMULATED[o.kind]}`);
    for (const w of this.workloadObjects())
      for (const c of podSpecOf(w).containers.concat(podSpecOf(w).initContainers ?? [])) {
        for (const n of this.images.resolve(c.image).notes) if (!this.notes.includes(n)) this.notes.push(n);
      }
    this.namespaces = this.namespaceSet();
    this.secrets = this.makeSecrets();
    this.allocServices();
    await this.startStandIns();
    for (const o of this.objects) {
      if (o.kind === 'Deployment' || o.kind === 'StatefulSet')
        this.workloads.set(ref(o), { obj: o, replicas: this.initialReplicas(o), pods: [] });
    }
    const seedJobs = byKind(this.objects, 'Job');
    await Promise.all([...this.workloads.values()].map((w) => this.reconcile(w)));
    for (const j of seedJobs) {
      const r = this.runJob(j);
      this.jobs.set(j.metadata.name, r);
      void r.then((x) => this.log(`${ref(j)}: ${x.phase}${x.reason ? ` (${x.reason})` : ''}`));
    }
  }

  private workloadObjects(): K8sObject[] {
    return this.objects.filter((o) => ['Deployment', 'StatefulSet', 'Job', 'CronJob'].includes(o.kind));
  }

  /** The namespaces pods live in: the rendered ones, kube-system (DNS) and every one a NetworkPolicy names. */
  private namespaceSet(): Namespace[] {
    const out = new Map<string, Namespace>();
    const add = (name: string, labels: Record<string, string> = {}) =>
      out.set(name, { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } });
    for (const ns of byKind(this.objects, 'Namespace')) add(ns.metadata.name, ns.metadata.labels);
    add('kube-system');
    for (const [name, labels] of this.peerNamespaces())
      if (!out.has(name)) {
        add(name);
        this.peerLabels.set(name, labels);
      }
    // A hub no policy names still gets its namespace: the fetch is then refused, and the drop says why.
    for (const h of this.hubs) if (!out.has(h.namespace)) add(h.namespace);
    if (!out.has(this.namespace)) add(this.namespace);
    return [...out.values()];
  }

  /**
   * Namespaces that NetworkPolicies name by `kubernetes.io/metadata.name`, with the pod labels they
   * expect there (the ingress controller's, Prometheus'): a stand-in pod in each carries them.
   */
  private peerNamespaces(): Map<string, Record<string, string>> {
    const out = new Map<string, Record<string, string>>();
    for (const np of byKind(this.objects, 'NetworkPolicy')) {
      for (const r of [...(np.spec.ingress ?? []), ...(np.spec.egress ?? [])]) {
        for (const peer of [...(r.from ?? []), ...(r.to ?? [])]) {
          const name = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
          if (name) out.set(name, { ...(out.get(name) ?? {}), ...(peer.podSelector?.matchLabels ?? {}) });
        }
      }
    }
    return out;
  }
  private readonly peerLabels = new Map<string, Record<string, string>>();

  /** Secret values as scripts/dev-secrets.sh makes them (its --files mode), so the runner tests that script too. */
  private makeSecrets(): Record<string, Record<string, string>> {
    const dir = join(this.opts.stateDir, 'secrets');
    runSync('bash', [join(this.opts.repo, 'scripts/dev-secrets.sh'), '--files', dir, this.namespace]);
    const out: Record<string, Record<string, string>> = {};
    for (const name of readdirSync(dir)) {
      out[name] = {};
      for (const key of readdirSync(join(dir, name))) out[name][key] = readFileSync(join(dir, name, key), 'utf8');
    }
    for (const s of byKind(this.objects, 'Secret')) {
      out[s.metadata.name] = {
        ...Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString()])),
        ...(s.stringData ?? {}),
      };
    }
    return out;
  }

  private allocServices(): void {
    this.dnsIp = this.net.allocServiceIp();
    const dnsSvc: K8sObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: {
        clusterIP: this.dnsIp,
        selector: { 'k8s-app': 'kube-dns' },
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
        ],
      },
    };
    this.svc = [{ svc: dnsSvc, ip: this.dnsIp }];
    for (const s of byKind(this.objects, 'Service')) {
      if (s.spec.type === 'NodePort' || s.spec.type === 'LoadBalancer')
        this.notes.push(`${ref(s)}: type ${s.spec.type} served as ClusterIP (no node ports here)`);
      this.svc.push({ svc: s, ip: s.spec.clusterIP === 'None' ? undefined : this.net.allocServiceIp() });
    }
  }

  /**
   * kube-dns in kube-system, the model hub in the namespace a model-fetch endpoint names, and an
   * empty "scraper" pod in each other namespace the policies name.
   */
  private async startStandIns(): Promise<void> {
    const hubsUp: Array<Promise<void>> = [];
    for (const ns of this.namespaces) {
      if (ns.name === this.namespace) continue;
      const dns = ns.name === 'kube-system';
      const hub = this.hubs.find((h) => h.namespace === ns.name);
      const name = dns ? 'kube-dns' : hub ? hub.service : `${ns.name}-peer`;
      const ip = this.net.allocPodIp();
      const labels = dns
        ? { 'k8s-app': 'kube-dns', ...(this.peerLabels.get(ns.name) ?? {}) }
        : { app: name, ...(this.peerLabels.get(ns.name) ?? {}) };
      const ports: NetPod['ports'] = dns
        ? [
            { name: 'dns', containerPort: 53, protocol: 'UDP' },
            { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
          ]
        : hub
          ? [{ name: 'http', containerPort: hub.port, protocol: 'TCP' }]
          : [];
      const pod: NetPod = { key: `${ns.name}.${name}`, name, namespace: ns.name, labels, ip, ports };
      const netns = await this.net.addPod(pod.key, ip, this.dnsConfig(ns.name), name);
      const entry: { pod: NetPod; proc?: ChildProcess; netns: string } = { pod, netns };
      if (dns) {
        await this.net.ns(netns, ['sysctl', '-qw', 'net.ipv4.ip_unprivileged_port_start=53']);
        this.writeDns();
        const log = join(this.opts.stateDir, 'kube-dns.log');
        entry.proc = spawn(
          'ip',
          [
            'netns',
            'exec',
            netns,
            'setpriv',
            '--reuid',
            '65534',
            '--regid',
            '65534',
            '--clear-groups',
            '--inh-caps=-all',
            '--bounding-set=-all',
            '--no-new-privs',
            '--',
            process.execPath,
            '--import',
            'tsx',
            join(__dirname, 'dns-server.ts'),
            join(this.opts.stateDir, 'dns.json'),
            ip,
          ],
          { stdio: ['ignore', 'ignore', 'ignore'], cwd: this.opts.repo },
        );
        void log;
      }
      if (hub) {
        entry.proc = this.startHub(hub, pod, netns);
        hubsUp.push(this.waitListening(hub, ip, entry.proc));
      }
      this.standIns.push(entry);
    }
    await this.resyncNow();
    await Promise.all(hubsUp);
  }

  /**
   * The stand-in hub (hub-server.ts) in its pod, as nobody, serving the tiny models; its Service
   * (ClusterIP, the endpoint's port) selects the pod, so DNS and the NAT treat it as any Service.
   */
  private startHub(hub: HubEndpoint, pod: NetPod, netns: string): ChildProcess {
    const tiny = join(this.opts.stateDir, 'image/tiny-models');
    if (!existsSync(tiny))
      throw new Error(`the stand-in hub serves the tiny models, but ${tiny} does not exist (ImageTable.prepareApp makes it)`);
    const specs = tinyHubSpecs(tiny);
    const served = loadHubRepos(specs);
    const content = join(this.opts.stateDir, 'model-hub.json');
    writeFileSync(content, JSON.stringify(specs));
    this.notes.push(
      `${hub.namespace}/${hub.service}: stand-in hub (tools/pods/model-hub.ts) on ${hub.url}, serving the tiny models as ${served.map((r) => `${r.repo}@${r.revision.slice(0, 12)}`).join(', ')}`,
    );
    for (const w of hub.wants) {
      if (!served.some((r) => r.repo === w.repo && r.revision === w.revision))
        this.notes.push(
          `${w.container} asks for ${w.repo}@${w.revision}, which the stand-in hub does not serve (its fetch will fail with 404)`,
        );
    }
    const svc: K8sObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: hub.service, namespace: hub.namespace },
      spec: { selector: { app: pod.name }, ports: [{ name: 'http', port: hub.port, protocol: 'TCP', targetPort: 'http' }] },
    };
    this.svc.push({ svc, ip: this.net.allocServiceIp() });
    const fd = openSync(this.hubLog, 'a');
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        netns,
        'setpriv',
        '--reuid',
        '65534',
        '--regid',
        '65534',
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
        '--no-new-privs',
        '--',
        process.execPath,
        '--import',
        'tsx',
        join(__dirname, 'hub-server.ts'),
        'serve',
        content,
        pod.ip,
        String(hub.port),
      ],
      { stdio: ['ignore', fd, fd], cwd: this.opts.repo },
    );
    closeSync(fd);
    return proc;
  }

  /** The stand-in hub's access log: one JSON line per request (model-hub.ts HubAccess). */
  get hubLog(): string {
    return join(this.opts.stateDir, 'model-hub.log');
  }

  private async waitListening(hub: HubEndpoint, ip: string, proc: ChildProcess): Promise<void> {
    for (const until = Date.now() + 60_000; Date.now() < until;) {
      // node + tsx start slowly on a busy machine
      if (proc.exitCode !== null) break;
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: ip, port: hub.port, timeout: 500 }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
        s.on('timeout', () => {
          s.destroy();
          resolve(false);
        });
      });
      if (ok) return;
      await sleep(200);
    }
    const log = existsSync(this.hubLog) ? readFileSync(this.hubLog, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
    throw new Error(`the stand-in hub ${hub.namespace}/${hub.service} did not listen on ${ip}:${hub.port}${log ? `:\n${log}` : ''}`);
  }

  dnsConfig(ns: string): { server: string; search: string[] } {
    return { server: this.dnsIp, search: [`${ns}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN] };
  }

  standInNetns(namespace: string): string | undefined {
    return this.standIns.find((s) => s.pod.namespace === namespace)?.netns;
  }

  private initialReplicas(o: K8sObject): number {
    const hpa = byKind(this.objects, 'HorizontalPodAutoscaler').find(
      (h) => h.spec.scaleTargetRef?.kind === o.kind && h.spec.scaleTargetRef?.name === o.metadata.name,
    );
    const base = o.spec.replicas ?? 1;
    return hpa ? Math.max(base, hpa.spec.minReplicas ?? 1) : base;
  }

  /** Adds objects of another folder (dist/<env>/test): policies, Services and config take effect now. */
  async apply(objs: K8sObject[]): Promise<void> {
    for (const o of objs) {
      this.checkKind(o);
      this.objects.push(o);
    }
    for (const s of objs.filter((o) => o.kind === 'Service'))
      this.svc.push({ svc: s, ip: s.spec.clusterIP === 'None' ? undefined : this.net.allocServiceIp() });
    this.policiesFor = '';
    await this.resyncNow();
  }

  /**
   * A pod with labels and an address but no containers, for exercising NetworkPolicies from or to
   * a workload that is not running now (a finished Job) or from a namespace no policy trusts.
   */
  async probePod(namespace: string, labels: Record<string, string>, name: string): Promise<NetPod & { netns: string }> {
    if (!this.namespaces.some((n) => n.name === namespace))
      this.namespaces.push({ name: namespace, labels: { 'kubernetes.io/metadata.name': namespace } });
    const ip = this.net.allocPodIp();
    const pod: NetPod = { key: `probe.${namespace}.${name}`, name, namespace, labels, ip, ports: [] };
    const netns = await this.net.addPod(pod.key, ip, this.dnsConfig(namespace), name);
    this.standIns.push({ pod, netns });
    await this.resyncNow();
    return { ...pod, netns };
  }

  netPods(): Array<NetPod & { netns: string; ready: boolean }> {
    return this.svcPods().map((p) => ({
      ...p,
      netns: this.pods.get(p.key)?.netns ?? this.standIns.find((s) => s.pod.key === p.key)!.netns,
    }));
  }

  get namespaceList(): Namespace[] {
    return this.namespaces;
  }

  async removeProbe(key: string): Promise<void> {
    const i = this.standIns.findIndex((s) => s.pod.key === key);
    if (i < 0) return;
    const [s] = this.standIns.splice(i, 1);
    this.nftReady.delete(s.netns);
    await this.net.removePod(s.pod.key);
    await this.resyncNow();
  }

  // ---- controllers -----------------------------------------------------------------------------

  async scale(target: string, replicas: number): Promise<void> {
    const w =
      this.workloads.get(target) ??
      [...this.workloads.values()].find((x) => `${x.obj.kind.toLowerCase()}/${x.obj.metadata.name}` === target.toLowerCase());
    if (!w) throw new Error(`no Deployment or StatefulSet ${target}`);
    w.replicas = replicas;
    await this.reconcile(w);
  }

  private async reconcile(w: Workload): Promise<void> {
    const o = w.obj;
    while (w.pods.length > w.replicas) {
      const p = o.kind === 'StatefulSet' ? w.pods.pop()! : w.pods.shift()!;
      await this.deletePod(p);
    }
    const template = o.spec.template;
    const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
    while (w.pods.length < w.replicas) {
      const i = w.pods.length;
      let p: Pod;
      if (o.kind === 'StatefulSet') {
        const name = `${o.metadata.name}-${i}`;
        const pvcs: Record<string, string> = {};
        for (const t of o.spec.volumeClaimTemplates ?? []) pvcs[t.metadata.name] = `${t.metadata.name}-${name}`;
        p = this.newPod(
          o,
          name,
          {
            ...template.metadata?.labels,
            'statefulset.kubernetes.io/pod-name': name,
            'apps.kubernetes.io/pod-index': String(i),
            'controller-revision-hash': `${o.metadata.name}-${hash}`,
          },
          { hostname: name, subdomain: o.spec.serviceName, pvcs },
        );
      } else {
        p = this.newPod(o, `${o.metadata.name}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`, {
          ...template.metadata?.labels,
          'pod-template-hash': hash,
        });
      }
      w.pods.push(p);
      await this.startPod(p);
      // OrderedReady: the next ordinal starts once this one is ready.
      if (o.kind === 'StatefulSet' && (o.spec.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady' && w.pods.length < w.replicas) {
        while (!p.ready && !p.deleted) await sleep(250);
      }
    }
  }

  private newPod(
    owner: K8sObject,
    name: string,
    labels: Record<string, string>,
    extra: ConstructorParameters<typeof Pod>[9] = {},
    spec = owner.spec.template.spec,
  ): Pod {
    const ns = owner.metadata.namespace ?? 'default';
    const key = `${name}`;
    const ctx: PodContext = {
      images: this.images,
      stateDir: this.opts.stateDir,
      data: (kind, n) => (kind === 'Secret' ? this.secrets[n] : byKind(this.objects, 'ConfigMap').find((c) => c.metadata.name === n)?.data),
      serviceEnv: (namespace) => serviceLinkEnv(this.svc, namespace),
      pvcDir: (claim) => {
        const d = join(this.opts.stateDir, 'pvc', claim);
        mkdirSync(d, { recursive: true });
        return d;
      },
      changed: () => this.markDirty(),
      log: this.log,
    };
    return new Pod(ctx, key, name, ns, labels, owner.spec.template?.metadata?.annotations ?? {}, spec, this.net.allocPodIp(), owner, extra);
  }

  private async startPod(p: Pod): Promise<void> {
    this.pods.set(p.key, p);
    const netns = await this.net.addPod(p.key, p.ip, this.dnsConfig(p.namespace), p.extra.hostname ?? p.name);
    p.netns = netns;
    await this.resyncNow(); // its policy and Service routes exist before its first packet
    await p.start(netns);
  }

  private async deletePod(p: Pod, keepLogs = false): Promise<void> {
    await p.stop();
    this.pods.delete(p.key);
    this.nftReady.delete(p.netns);
    await this.net.removePod(p.key);
    if (!keepLogs) rmSync(p.dir, { recursive: true, force: true });
    this.markDirty();
  }

  /** Runs a Job to completion (or failure) and returns its last pod's phase. */
  async runJob(job: K8sObject): Promise<{ phase: 'Succeeded' | 'Failed'; pod: Pod; reason?: string }> {
    const backoffLimit = job.spec.backoffLimit ?? 6;
    const deadline = job.spec.activeDeadlineSeconds ? Date.now() + job.spec.activeDeadlineSeconds * 1000 : Infinity;
    let failures = 0;
    for (;;) {
      const name = `${job.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`;
      const p = this.newPod(job, name, {
        ...job.spec.template.metadata?.labels,
        'job-name': job.metadata.name,
        'batch.kubernetes.io/job-name': job.metadata.name,
      });
      const done = new Promise<'Succeeded' | 'Failed'>((resolve) => {
        p.onFinished = resolve;
      });
      p.onFailureCheck = () => {
        if (failures + p.failures > backoffLimit) {
          p.finish('Failed');
          return true;
        }
        return false;
      };
      await this.startPod(p);
      const timer = Number.isFinite(deadline) ? setTimeout(() => p.finish('Failed'), Math.max(0, deadline - Date.now())) : undefined;
      const phase = await done;
      if (timer) clearTimeout(timer);
      await this.deletePod(p, true); // a finished pod gives its address back; its logs stay
      if (phase === 'Succeeded') return { phase, pod: p };
      failures += 1 + p.failures;
      if (failures > backoffLimit || Date.now() >= deadline) {
        return { phase: 'Failed', pod: p, reason: Date.now() >= deadline ? 'DeadlineExceeded' : 'BackoffLimitExceeded' };
      }
      await sleep(Math.min(10_000 * 2 ** (failures - 1), 360_000));
    }
  }

  /** A CronJob's jobTemplate, run once now (as `kubectl create job --from=cronjob/NAME`). */
  runCronJob(name: string): Promise<{ phase: 'Succeeded' | 'Failed'; pod: Pod; reason?: string }> {
    const cj = byKind(this.objects, 'CronJob').find((c) => c.metadata.name === name);
    if (!cj) throw new Error(`no CronJob ${name}`);
    const job: K8sObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { ...cj.spec.jobTemplate.metadata, name: `${name}-manual`, namespace: cj.metadata.namespace },
      spec: cj.spec.jobTemplate.spec,
    };
    return this.runJob(job);
  }

  // ---- services, DNS, policies -------------------------------------------------------------------

  private stopped = false;
  private readonly jobs = new Map<string, Promise<{ phase: 'Succeeded' | 'Failed'; pod: Pod; reason?: string }>>();

  /** The result of a Job started by `up` (awaits it). */
  jobResult(name: string): Promise<{ phase: 'Succeeded' | 'Failed'; pod: Pod; reason?: string }> | undefined {
    return this.jobs.get(name);
  }

  private markDirty(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (!this.syncing)
      this.syncing = sleep(50)
        .then(() => this.resyncNow())
        .finally(() => {
          this.syncing = undefined;
          if (this.dirty) this.markDirty();
        });
  }

  private svcPods(): SvcPod[] {
    const pods: SvcPod[] = [...this.pods.values()]
      .filter((p) => p.netns)
      .map((p) => ({
        key: p.key,
        name: p.name,
        namespace: p.namespace,
        labels: p.labels,
        ip: p.ip,
        ports: p.ports,
        ready: p.ready,
        hostname: p.extra.hostname,
        subdomain: p.extra.subdomain,
      }));
    for (const s of this.standIns) pods.push({ ...s.pod, ready: true });
    return pods;
  }

  private writeDns(): void {
    const file = join(this.opts.stateDir, 'dns.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(dnsRecords(this.svc, this.svcPods()), null, 1));
    renameSync(`${file}.tmp`, file);
  }

  async resyncNow(): Promise<void> {
    if (this.stopped) return;
    this.dirty = false;
    const pods = this.svcPods();
    this.writeDns();
    const policies = byKind(this.objects, 'NetworkPolicy');
    const podSet = pods
      .map((p) => `${p.key}=${p.ip}`)
      .sort()
      .join(',');
    const policyChanged = podSet !== this.policiesFor;
    this.policiesFor = podSet;
    const nat = serviceNat(this.svc, pods, false);
    const netnsOf = (p: NetPod) => this.pods.get(p.key)?.netns ?? this.standIns.find((s) => s.pod.key === p.key)?.netns;
    await Promise.all(
      pods.map(async (p) => {
        const ns = netnsOf(p);
        if (!ns) return;
        const first = !this.nftReady.has(ns);
        let script = first ? serviceNat(this.svc, pods, true) : nat;
        if (first || policyChanged) script += nftScript(podPolicy(p, policies, pods, this.namespaces), NODE_IP, first);
        try {
          await this.net.ns(ns, ['nft', '-f', '-'], script);
          this.nftReady.add(ns);
        } catch (err) {
          if (existsSync(`/run/netns/${ns}`)) this.log(`nft in ${ns}: ${(err as Error).message}`);
        }
      }),
    );
  }

  /** Drop counters and records of every pod, with peers named. */
  async drops(): Promise<
    Array<{ pod: string; dropped: { ingress: number; egress: number }; records: Array<DropRecord & { peerPod: string }> }>
  > {
    const byIp = new Map(this.svcPods().map((p) => [p.ip, `${p.namespace === this.namespace ? '' : `${p.namespace}/`}${p.name}`]));
    const out = [];
    for (const p of [...this.pods.values()].filter((x) => x.netns && !x.deleted)) {
      const r = await run('ip', ['netns', 'exec', p.netns, 'nft', '-j', 'list', 'table', 'inet', 'orbpod'], { allowFail: true });
      if (r.code !== 0) continue;
      const d = parseDrops(r.stdout);
      out.push({ pod: p.name, dropped: d.dropped, records: d.records.map((x) => ({ ...x, peerPod: byIp.get(x.peer) ?? x.peer })) });
    }
    return out;
  }

  // ---- status and teardown -------------------------------------------------------------------

  rows(): PodRow[] {
    return [...this.pods.values()].map((p) => {
      const bad = p.statuses.find((s) => !s.ready && !(s.init && s.exitCode === 0) && (s.reason || s.lastProbeError));
      return {
        pod: p.name,
        owner: p.ownerRef,
        phase: p.phase,
        ready: p.ready,
        restarts: p.restarts,
        ip: p.ip,
        readyAfterS: p.readyAt ? Math.round((p.readyAt - this.started) / 100) / 10 : undefined,
        reason: bad ? `${bad.name}: ${bad.reason ?? bad.lastProbeError}` : undefined,
      };
    });
  }

  /** Marks first-ready times (called often by waiters). */
  tick(): void {
    for (const p of this.pods.values()) if (p.ready && !p.readyAt) p.readyAt = Date.now();
  }

  async waitReady(timeoutMs: number): Promise<PodRow[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      this.tick();
      const long = [...this.pods.values()].filter((p) => p.owner.kind !== 'Job');
      if (long.length && long.every((p) => p.ready)) return this.rows();
      if (Date.now() > until) {
        const waiting = this.rows().filter((r) => !r.ready && !r.owner.startsWith('Job/'));
        throw new Error(
          `not ready after ${timeoutMs / 1000}s:\n${waiting.map((r) => `${r.owner} pod ${r.pod} container ${r.reason ?? r.phase}`).join('\n')}`,
        );
      }
      await sleep(250);
    }
  }

  async down(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pods.values()].map((p) => p.stop()));
    for (const s of this.standIns) s.proc?.kill('SIGKILL');
    await this.net.destroyAll();
  }
}

function podSpecOf(o: K8sObject): any {
  if (o.kind === 'CronJob') return o.spec.jobTemplate.spec.template.spec;
  return o.spec.template.spec;
}

export { selects };
