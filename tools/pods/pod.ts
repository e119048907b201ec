/**
 * One pod as the kubelet runs it: volumes laid out, init containers in order, then the
 * containers with their startup, readiness and liveness probes, restarts with back-off, and a
 * graceful stop (preStop, SIGTERM, grace period, SIGKILL).
 *
 * A container is a process in the pod's network namespace and a mount namespace of its own, whose
 * root is a tmpfs holding read-only binds of the host's /usr and /etc, the image's files, and the
 * volume mounts; then chroot and setpriv (uid, gid, supplementary fsGroup, capabilities,
 * no_new_privs).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { K8sObject } from './manifests';
import { ImageTable, LocalImage } from './images';
import { PodPort } from './policy';
import { q, run } from './sh';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Spec = any;

export interface PodContext {
  images: ImageTable;
  stateDir: string;
  /** ConfigMaps and Secrets by `<kind>/<name>` → key → value. */
  data(kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> | undefined;
  serviceEnv(namespace: string): Record<string, string>;
  pvcDir(claim: string): string;
  changed(): void;
  log(line: string): void;
}

export interface ContainerStatus {
  name: string;
  init: boolean;
  state: 'waiting' | 'running' | 'terminated';
  ready: boolean;
  started: boolean;
  restarts: number;
  exitCode?: number;
  reason?: string;
  pid?: number;
  lastProbeError?: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

class Container {
  proc?: ChildProcess;
  status: ContainerStatus;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private backoffMs = 10_000;
  private probeState = { startupFails: 0, liveFails: 0, readyFails: 0, readyOk: 0 };
  exited?: Promise<number>;

  constructor(
    readonly pod: Pod,
    readonly spec: Spec,
    readonly init: boolean,
  ) {
    this.status = { name: spec.name, init, state: 'waiting', ready: false, started: false, restarts: 0 };
  }

  get ref(): string {
    return `${this.pod.ownerRef} pod ${this.pod.name} container ${this.spec.name}`;
  }

  start(): void {
    this.stopping = false;
    this.probeState = { startupFails: 0, liveFails: 0, readyFails: 0, readyOk: 0 };
    let argv: string[];
    let env: Record<string, string>;
    try {
      env = this.pod.containerEnv(this.spec);
      argv = this.pod.containerArgv(this.spec, env);
    } catch (err) {
      this.status = { ...this.status, state: 'waiting', reason: `CreateContainerConfigError: ${(err as Error).message}` };
      this.pod.ctx.log(`${this.ref}: ${this.status.reason}`);
      this.onExit(1);
      return;
    }
    const logFile = join(this.pod.dir, `${this.spec.name}.log`);
    const fd = openSync(logFile, 'a');
    this.proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.pod.netns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-ec',
        this.pod.setupScript(this.spec, argv),
      ],
      {
        env,
        stdio: ['ignore', fd, fd],
        detached: true,
      },
    );
    closeSync(fd);
    this.status = {
      ...this.status,
      state: 'running',
      pid: this.proc.pid,
      reason: undefined,
      exitCode: undefined,
      ready: false,
      started: false,
    };
    const proc = this.proc;
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, sig) =>
        resolve(code ?? (sig ? 128 + (({ SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1) : 1)),
      ),
    );
    void this.exited.then((code) => {
      if (this.proc === proc) this.onExit(code);
    });
    if (!this.init) this.startProbes();
    this.pod.ctx.changed();
  }

  private onExit(code: number): void {
    this.clearTimers();
    this.status = {
      ...this.status,
      state: 'terminated',
      exitCode: code,
      ready: false,
      pid: undefined,
      reason: this.status.reason ?? (code === 0 ? 'Completed' : 'Error'),
    };
    this.proc = undefined;
    this.pod.ctx.changed();
    if (this.stopping) return;
    this.pod.containerExited(this, code);
  }

  /** Restart in place with the kubelet's back-off (10 s doubling, at most 5 min). */
  restartLater(): void {
    this.status.restarts += 1;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 300_000);
    this.status.reason = `${this.status.reason ?? 'Error'}; back-off ${wait / 1000}s`;
    this.timers.push(
      setTimeout(() => {
        if (!this.pod.deleted) this.start();
      }, wait),
    );
  }

  private startProbes(): void {
    const sp = this.spec.startupProbe;
    const schedule = (probe: Spec, fn: () => void) => {
      const first = (probe.initialDelaySeconds ?? 0) * 1000;
      const period = (probe.periodSeconds ?? 10) * 1000;
      const t = setTimeout(function tick(this: unknown) {
        fn();
        timers.push(setTimeout(tick, period));
      }, first);
      const timers = this.timers;
      timers.push(t);
    };
    const afterStartup = () => {
      this.status.started = true;
      const rp = this.spec.readinessProbe;
      if (!rp) {
        this.status.ready = true;
        this.pod.ctx.changed();
      } else schedule(rp, () => void this.probe(rp, 'readiness'));
      const lp = this.spec.livenessProbe;
      if (lp) schedule(lp, () => void this.probe(lp, 'liveness'));
    };
    if (sp) {
      schedule(
        sp,
        () =>
          void this.probe(sp, 'startup').then((ok) => {
            if (ok && !this.status.started) {
              this.clearTimers();
              afterStartup();
            }
          }),
      );
    } else afterStartup();
  }

  private async probe(p: Spec, kind: 'startup' | 'readiness' | 'liveness'): Promise<boolean> {
    if (this.status.state !== 'running' || this.stopping) return false;
    if (kind === 'startup' && this.status.started) return true;
    const result = await this.pod.runProbe(this, p);
    if (this.status.state !== 'running' || this.stopping) return false;
    const st = this.probeState;
    const threshold = p.failureThreshold ?? 3;
    if (kind === 'startup') {
      if (result.ok) return true;
      if (++st.startupFails >= threshold) this.failProbe(kind, result.detail, p);
      return false;
    }
    if (kind === 'liveness') {
      st.liveFails = result.ok ? 0 : st.liveFails + 1;
      if (st.liveFails >= threshold) this.failProbe(kind, result.detail, p);
      return result.ok;
    }
    if (result.ok) {
      st.readyFails = 0;
      if (++st.readyOk >= (p.successThreshold ?? 1) && !this.status.ready) {
        this.status.ready = true;
        this.pod.ctx.changed();
      }
    } else {
      st.readyOk = 0;
      this.status.lastProbeError = `readinessProbe ${describeProbe(p)}: ${result.detail}`;
      if (++st.readyFails >= threshold && this.status.ready) {
        this.status.ready = false;
        this.pod.ctx.changed();
      }
    }
    return result.ok;
  }

  private failProbe(kind: string, detail: string, p: Spec): void {
    const msg = `${kind}Probe ${describeProbe(p)} failed ${p.failureThreshold ?? 3} times: ${detail}`;
    this.pod.ctx.log(`${this.ref}: ${msg}; restarting`);
    this.status.reason = `Unhealthy: ${msg}`;
    void this.kill(this.pod.grace(), true);
  }

  /** preStop, SIGTERM, wait up to `graceMs`, SIGKILL. `restart` leaves the exit handler to restart it. */
  async kill(graceMs: number, restart = false): Promise<void> {
    this.clearTimers();
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    this.stopping = !restart;
    const deadline = Date.now() + graceMs;
    const pre = this.spec.lifecycle?.preStop;
    if (pre?.exec?.command) await this.pod.execIn(this, pre.exec.command, graceMs).catch(() => undefined);
    else if (pre?.sleep?.seconds) await new Promise((r) => setTimeout(r, pre.sleep.seconds * 1000));
    try {
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    const left = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, left);
    await this.exited;
    clearTimeout(timer);
  }

  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
}

function describeProbe(p: Spec): string {
  if (p.httpGet) return `httpGet ${p.httpGet.path ?? '/'} port ${p.httpGet.port}`;
  if (p.tcpSocket) return `tcpSocket port ${p.tcpSocket.port}`;
  if (p.exec) return `exec ${JSON.stringify(p.exec.command)}`;
  if (p.grpc) return `grpc port ${p.grpc.port}`;
  return 'probe';
}

export class Pod {
  readonly dir: string;
  netns = '';
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' = 'Pending';
  deleted = false;
  readonly initContainers: Container[];
  readonly containers: Container[];
  readyAt?: number;
  readonly createdAt = Date.now();
  failures = 0;
  onFinished?: (phase: 'Succeeded' | 'Failed') => void;

  constructor(
    readonly ctx: PodContext,
    readonly key: string,
    readonly name: string,
    readonly namespace: string,
    readonly labels: Record<string, string>,
    readonly annotations: Record<string, string>,
    readonly spec: Spec,
    readonly ip: string,
    readonly owner: K8sObject,
    readonly extra: { hostname?: string; subdomain?: string; pvcs?: Record<string, string> } = {},
  ) {
    this.dir = join(ctx.stateDir, 'pods', key);
    this.initContainers = (spec.initContainers ?? []).map((c: Spec) => new Container(this, c, true));
    this.containers = (spec.containers ?? []).map((c: Spec) => new Container(this, c, false));
  }

  get ownerRef(): string {
    return `${this.owner.kind}/${this.owner.metadata.name}`;
  }
  get ports(): PodPort[] {
    return (this.spec.containers ?? []).flatMap((c: Spec) =>
      (c.ports ?? []).map((p: Spec) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' })),
    );
  }
  get ready(): boolean {
    return this.phase === 'Running' && this.containers.every((c) => c.status.ready);
  }
  get restarts(): number {
    return [...this.initContainers, ...this.containers].reduce((n, c) => n + c.status.restarts, 0);
  }
  get statuses(): ContainerStatus[] {
    return [...this.initContainers, ...this.containers].map((c) => ({ ...c.status }));
  }
  grace(): number {
    return (this.spec.terminationGracePeriodSeconds ?? 30) * 1000;
  }

  /** Lays out volumes and runs init containers in order, then starts the containers. */
  async start(netns: string): Promise<void> {
    this.netns = netns;
    mkdirSync(this.dir, { recursive: true });
    this.prepareVolumes();
    this.phase = 'Pending';
    this.runInit(0);
  }

  private runInit(i: number): void {
    if (this.deleted) return;
    if (i >= this.initContainers.length) {
      this.phase = 'Running';
      for (const c of this.containers) c.start();
      this.ctx.changed();
      return;
    }
    this.nextInit = i;
    this.initContainers[i].start();
  }
  private nextInit = 0;

  containerExited(c: Container, code: number): void {
    const policy = this.spec.restartPolicy ?? 'Always';
    if (c.init) {
      if (code === 0) {
        this.runInit(this.nextInit + 1);
        return;
      }
      if (policy === 'Never') {
        this.finish('Failed');
        return;
      }
      c.restartLater();
      return;
    }
    if (policy === 'Always' || (policy === 'OnFailure' && code !== 0)) {
      if (policy === 'OnFailure') {
        this.failures += 1;
        if (this.onFailureCheck?.()) return;
      }
      c.restartLater();
      return;
    }
    if (this.containers.every((x) => x.status.state === 'terminated')) {
      this.finish(this.containers.every((x) => x.status.exitCode === 0) ? 'Succeeded' : 'Failed');
    }
  }
  onFailureCheck?: () => boolean;

  finish(phase: 'Succeeded' | 'Failed'): void {
    if (this.phase === 'Succeeded' || this.phase === 'Failed') return;
    this.phase = phase;
    for (const c of [...this.initContainers, ...this.containers]) c.clearTimers();
    this.ctx.changed();
    this.onFinished?.(phase);
  }

  async stop(): Promise<void> {
    this.deleted = true;
    await Promise.all([...this.initContainers, ...this.containers].map((c) => c.kill(this.grace())));
  }

  // ---- volumes -------------------------------------------------------------------------------

  volumeDir(name: string): string {
    return join(this.dir, 'volumes', name);
  }

  private prepareVolumes(): void {
    const fsGroup: number | undefined = this.spec.securityContext?.fsGroup;
    for (const v of this.spec.volumes ?? []) {
      let dir = this.volumeDir(v.name);
      if (v.emptyDir) mkdirSync(dir, { recursive: true });
      else if (v.configMap || v.secret) {
        const kind = v.configMap ? 'ConfigMap' : 'Secret';
        const src = v.configMap ?? v.secret;
        const name = src.name ?? src.secretName;
        const data = this.ctx.data(kind, name);
        if (!data) {
          if (src.optional) {
            mkdirSync(dir, { recursive: true });
            continue;
          }
          throw new Error(`${this.ownerRef}: volume ${v.name}: ${kind} ${name} not found`);
        }
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const items: Array<{ key: string; path: string; mode?: number }> =
          src.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const it of items) {
          if (!(it.key in data)) throw new Error(`${this.ownerRef}: volume ${v.name}: ${kind} ${name} has no key ${it.key}`);
          const file = join(dir, it.path);
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, data[it.key]);
          chmodSync(file, it.mode ?? src.defaultMode ?? 0o644);
          if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
        }
      } else if (v.persistentVolumeClaim) {
        dir = this.ctx.pvcDir(v.persistentVolumeClaim.claimName);
      } else
        throw new Error(
          `${this.ownerRef}: volume ${v.name}: type ${Object.keys(v)
            .filter((k) => k !== 'name')
            .join(',')} is not emulated`,
        );
      if (fsGroup !== undefined && (v.emptyDir || v.persistentVolumeClaim)) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2775);
      }
      if (fsGroup !== undefined && (v.configMap || v.secret)) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2755);
      }
    }
    for (const [name, claim] of Object.entries(this.extra.pvcs ?? {})) {
      const dir = this.ctx.pvcDir(claim);
      if (fsGroup !== undefined) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2775);
      }
      this.pvcVolumes[name] = dir;
    }
  }
  private pvcVolumes: Record<string, string> = {};

  private volumeSource(name: string): string {
    const v = (this.spec.volumes ?? []).find((x: Spec) => x.name === name);
    if (v?.persistentVolumeClaim) return this.ctx.pvcDir(v.persistentVolumeClaim.claimName);
    if (v) return this.volumeDir(name);
    if (this.pvcVolumes[name]) return this.pvcVolumes[name];
    throw new Error(`volumeMount ${name} names no volume of the pod`);
  }

  // ---- env and command -------------------------------------------------------------------------

  private fieldRef(path: string): string {
    const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (m) return (m[1] === 'labels' ? this.labels : this.annotations)[m[2]] ?? '';
    const fields: Record<string, string> = {
      'metadata.name': this.name,
      'metadata.namespace': this.namespace,
      'metadata.uid': this.key,
      'spec.nodeName': 'orbpods-node',
      'spec.serviceAccountName': this.spec.serviceAccountName ?? 'default',
      'status.podIP': this.ip,
      'status.podIPs': this.ip,
      'status.hostIP': '198.18.0.1',
    };
    if (!(path in fields)) throw new Error(`fieldRef ${path} is not supported`);
    return fields[path];
  }

  containerEnv(c: Spec): Record<string, string> {
    const img: LocalImage = this.ctx.images.resolve(c.image);
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: this.extra.hostname ?? this.name, ...img.env };
    if (this.spec.enableServiceLinks !== false) Object.assign(env, this.ctx.serviceEnv(this.namespace));
    for (const from of c.envFrom ?? []) {
      const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
      const r = from.configMapRef ?? from.secretRef;
      const data = this.ctx.data(kind, r.name);
      if (!data) {
        if (r.optional) continue;
        throw new Error(`envFrom ${kind} ${r.name} not found`);
      }
      for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = expand(String(e.value), env);
      else if (e.valueFrom?.fieldRef) env[e.name] = this.fieldRef(e.valueFrom.fieldRef.fieldPath);
      else if (e.valueFrom?.configMapKeyRef || e.valueFrom?.secretKeyRef) {
        const kind = e.valueFrom.configMapKeyRef ? 'ConfigMap' : 'Secret';
        const r = e.valueFrom.configMapKeyRef ?? e.valueFrom.secretKeyRef;
        const v = this.ctx.data(kind, r.name)?.[r.key];
        if (v === undefined) {
          if (r.optional) continue;
          throw new Error(`env ${e.name}: ${kind} ${r.name} key ${r.key} not found`);
        }
        env[e.name] = v;
      } else if (e.valueFrom) throw new Error(`env ${e.name}: valueFrom ${Object.keys(e.valueFrom).join(',')} is not supported`);
      else env[e.name] = '';
    }
    return env;
  }

  containerArgv(c: Spec, env: Record<string, string>): string[] {
    const img = this.ctx.images.resolve(c.image);
    const command: string[] | undefined = c.command ?? img.entrypoint;
    const args: string[] = c.args ?? (c.command ? [] : (img.cmd ?? []));
    const argv = [...(command ?? []), ...args].map((a) => expand(String(a), env));
    if (!argv.length) throw new Error(`container ${c.name} has no command and image ${c.image} none either`);
    return argv;
  }

  /** uid, gid and groups the container runs as (container securityContext over the pod's). */
  identity(c: Spec): { uid: number; gid: number; groups: number[] } {
    const sc = { ...(this.spec.securityContext ?? {}), ...(c.securityContext ?? {}) };
    const img = this.ctx.images.resolve(c.image);
    const uid: number = sc.runAsUser ?? img.user?.uid ?? 0;
    const gid: number = sc.runAsGroup ?? img.user?.gid ?? 0;
    if (sc.runAsNonRoot && uid === 0) throw new Error('container has runAsNonRoot and would run as root (CreateContainerConfigError)');
    const groups = [this.spec.securityContext?.fsGroup, ...(this.spec.securityContext?.supplementalGroups ?? [])].filter(
      (g) => g !== undefined,
    );
    return { uid, gid, groups };
  }

  /** The root-side set-up of a container's mount namespace, ending in exec of its command. */
  setupScript(c: Spec, argv: string[]): string {
    const img = this.ctx.images.resolve(c.image);
    const sc = c.securityContext ?? {};
    const id = this.identity(c);
    const root = join(this.dir, `${c.name}.root`);
    mkdirSync(root, { recursive: true });
    const R = q(root);
    const at = (target: string): string => q(`${root}${target}`);
    const mountPaths: string[] = (c.volumeMounts ?? []).map((m: Spec) => m.mountPath);
    const s: string[] = [`mount -t tmpfs -o mode=755 ${q(`${this.name}-${c.name}`)} ${R}`, `cd ${R}`];
    const bindRo = (src: string, target: string) => {
      if (!existsSync(src)) throw new Error(`image ${c.image}: ${src} (for ${target}) does not exist; build it first`);
      s.push(
        `if [ -d ${q(src)} ]; then mkdir -p ${at(target)}; else mkdir -p ${at(dirname(target))}; touch ${at(target)}; fi`,
        `mount --rbind ${q(src)} ${at(target)}`,
        `mount -o remount,bind,ro ${at(target)}`,
      );
    };
    bindRo('/usr', '/usr');
    // /etc entry by entry (read-only), leaving out any a volume mounts over, so that
    // /etc/redis/conf can be a ConfigMap as it is in the redis image, which has no /etc/redis.
    const skip = mountPaths.filter((m) => m.startsWith('/etc/')).map((m) => m.split('/')[2]);
    s.push(
      `mkdir -p etc; for e in /etc/* /etc/.[!.]*; do [ -e "$e" ] || continue; n=\${e#/etc/}; case " ${skip.join(' ')} " in *" $n "*) continue ;; esac; ` +
        'if [ -d "$e" ]; then mkdir -p "etc/$n"; else touch "etc/$n"; fi; mount --rbind "$e" "etc/$n"; mount -o remount,bind,ro "etc/$n" 2>/dev/null || true; done',
    );
    s.push(
      'for l in bin sbin lib lib32 lib64 libx32; do if [ -L /$l ]; then ln -s "$(readlink /$l)" "$l"; elif [ -d /$l ]; then mkdir -p "$l" && mount --rbind /$l "$l" && mount -o remount,bind,ro "$l"; fi; done',
    );
    // A minimal /dev, as container runtimes give: the usual character devices and a /dev/shm.
    s.push(
      'mkdir -p dev proc tmp',
      'mount -t tmpfs -o mode=755 dev dev',
      'for d in null zero full random urandom tty; do touch dev/$d; mount --bind /dev/$d dev/$d; done',
      'mkdir -p dev/shm dev/pts && mount -t tmpfs -o mode=1777 shm dev/shm',
      'ln -s /proc/self/fd dev/fd',
      'mount -t proc proc proc',
    );
    for (const l of img.layout) bindRo(l.source, l.target);
    for (const m of c.volumeMounts ?? []) {
      let src = this.volumeSource(m.name);
      if (m.subPath) src = join(src, m.subPath);
      s.push(
        `if [ -d ${q(src)} ]; then mkdir -p ${at(m.mountPath)}; else mkdir -p ${at(dirname(m.mountPath))}; touch ${at(m.mountPath)}; fi`,
        `mount --bind ${q(src)} ${at(m.mountPath)}`,
      );
      if (m.readOnly) s.push(`mount -o remount,bind,ro ${at(m.mountPath)}`);
    }
    const workdir = c.workingDir ?? img.workdir;
    s.push(`mkdir -p ${at(workdir)}`);
    if (sc.readOnlyRootFilesystem) s.push(`mount -o remount,ro ${R}`);
    const caps = sc.capabilities ?? {};
    const dropAll = (caps.drop ?? []).some((d: string) => d.toUpperCase() === 'ALL');
    const add = (caps.add ?? []).map((a: string) => `+${a.toLowerCase().replace(/^cap_/, '')}`);
    const setpriv = [
      'setpriv',
      '--reuid',
      String(id.uid),
      '--regid',
      String(id.gid),
      ...(id.groups.length ? ['--groups', id.groups.join(',')] : ['--clear-groups']),
    ];
    if (dropAll) setpriv.push('--inh-caps', ['-all', ...add].join(','), '--bounding-set', ['-all', ...add].join(','));
    if (sc.allowPrivilegeEscalation === false) setpriv.push('--no-new-privs');
    s.push(`exec chroot ${R} ${setpriv.map(q).join(' ')} -- env -C ${q(workdir)} ${argv.map(q).join(' ')}`);
    return s.join('\n');
  }

  // ---- probes and exec -------------------------------------------------------------------------

  /** Runs a command inside a running container (exec probes, preStop), as its user. */
  async execIn(c: Container, command: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
    const pid = c.status.pid;
    if (!pid) return { code: 1, out: 'container not running' };
    const id = this.identity(c.spec);
    const env = this.containerEnv(c.spec);
    const args = [
      '--target',
      String(pid),
      '--mount',
      '--net',
      '--root',
      '--wd',
      '--',
      'setpriv',
      '--reuid',
      String(id.uid),
      '--regid',
      String(id.gid),
      ...(id.groups.length ? ['--groups', id.groups.join(',')] : ['--clear-groups']),
      '--',
      'env',
      '-i',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...command,
    ];
    const r = await run('nsenter', args, { allowFail: true, timeoutMs });
    return { code: r.code, out: (r.stdout + r.stderr).trim().slice(0, 300) };
  }

  async runProbe(c: Container, p: Spec): Promise<{ ok: boolean; detail: string }> {
    const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
    const portOf = (port: string | number): number => {
      if (typeof port === 'number' || /^\d+$/.test(String(port))) return Number(port);
      const found = (c.spec.ports ?? []).find((x: Spec) => x.name === port);
      if (!found) throw new Error(`port ${port} is not a declared containerPort`);
      return found.containerPort;
    };
    try {
      if (p.httpGet) {
        const port = portOf(p.httpGet.port);
        const headers: Record<string, string> = { 'User-Agent': 'kube-probe/1.28' };
        for (const h of p.httpGet.httpHeaders ?? []) headers[h.name] = h.value;
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.get(
            { host: p.httpGet.host ?? this.ip, port, path: p.httpGet.path ?? '/', headers, timeout: timeoutMs },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
          req.on('error', reject);
        });
        return { ok: status >= 200 && status < 400, detail: `HTTP ${status}` };
      }
      if (p.tcpSocket) {
        const port = portOf(p.tcpSocket.port);
        await new Promise<void>((resolve, reject) => {
          const s = net.connect({ host: p.tcpSocket.host ?? this.ip, port, timeout: timeoutMs }, () => {
            s.destroy();
            resolve();
          });
          s.on('timeout', () => {
            s.destroy();
            reject(new Error('timeout'));
          });
          s.on('error', reject);
        });
        return { ok: true, detail: 'connected' };
      }
      if (p.exec) {
        const r = await this.execIn(c, p.exec.command, timeoutMs);
        return { ok: r.code === 0, detail: `exit ${r.code}${r.out ? `: ${r.out}` : ''}` };
      }
      return { ok: false, detail: 'probe type not supported' };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }
}

/** Kubernetes' $(VAR) expansion: defined names expand, $$ escapes, unknown stay as written. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => (m === '$$' ? '$' : name in env ? env[name] : m));
}
