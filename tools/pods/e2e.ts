/**
 * npm run e2e:pods — dist/dev run as a kubelet would run it, NetworkPolicies enforced:
 *   up → every probe passes → orb-core scaled to 2 → orb-smoke (text turn, spoken audio turn,
 *   resume across replicas) with no packet dropped → each NetworkPolicy refuses one connection
 *   (its drop counter rises) while an allowed peer gets through → the KEDA triggers of dist/prod
 *   name a stream and group of the running vault whose lag grows while the workers are stopped →
 *   every scrape target answers text that promtool accepts → a table of pods.
 * Needs root, iproute2, nftables, util-linux and redis-server; without them it prints SKIPPED
 * (and fails under CI=true, where .ci/run installed them).
 *
 * npm run e2e:pods -- --variant fetch — the dev-fetch variant (charts/environments.ts), rendered
 * into the state folder: the speech workers' model-fetch init containers pull the tiny models
 * from a stand-in hub pod (model-hub.ts) through the NetworkPolicies, verify every sha256
 * against charts/models.tiny.lock.json, the workers become ready on those files and orb-smoke
 * passes, with no packet dropped from start to end; only the speech workers may reach the hub.
 *
 * npm run e2e:pods -- --break <case> — runs a copy of the rendered tree with one deliberate
 * breakage (breakage.ts: keda-group, probe-path, netpol-edge, env-name) and must FAIL, naming the
 * object and the field; it exits 0 only when the failure output matches what the case expects.
 */
import { COMPONENTS, PORTS } from '../../services/contract';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { Cluster } from './cluster';
import { ImageTable } from './images';
import { byKind, K8sObject, loadDir, ref, renderedEnv, selects } from './manifests';
import { summarizeAccessLog } from './model-hub';
import { enterNode, insideNode, preflight } from './node';
import { allows, NetPod, parseDrops } from './policy';
import { BREAKAGES, breakTree } from './breakage';
import { envProblems } from './env-contract';
import { has, run, sleep } from './sh';

const repo = resolve(__dirname, '../..');
const args = process.argv.slice(2);
/** Variants: environments rendered on request (charts/environments.ts VARIANTS), run with their own phases. */
const VARIANT_ENVS: Record<string, string> = { fetch: 'dev-fetch' };
const variant = args.includes('--variant') ? args[args.indexOf('--variant') + 1] : undefined;
if (variant !== undefined && !VARIANT_ENVS[variant])
  throw new Error(`--variant ${variant}: known variants: ${Object.keys(VARIANT_ENVS).join(', ')}`);
const breakCase = args.includes('--break') ? args[args.indexOf('--break') + 1] : undefined;
if (breakCase !== undefined && !BREAKAGES[breakCase])
  throw new Error(`--break ${breakCase}: known cases: ${Object.keys(BREAKAGES).join(', ')}`);
const flagValues = new Set([variant, breakCase].filter(Boolean));
const env = variant ? VARIANT_ENVS[variant] : (args.find((a) => !a.startsWith('--') && !flagValues.has(a)) ?? 'dev');
// ORBPODS_TAG lets two checkouts run e2e:pods at once (namespaces and state are named by it).
const tag = process.env.ORBPODS_TAG ?? `orbpods-e2e-${env}${breakCase ? `-break` : ''}`;
const stateDir = join(process.env.TMPDIR ?? '/tmp', tag);
// dist/<env>, or a variant rendered into the state folder (it has no committed dist/).
let dist = '';
let prodDist = join(repo, 'dist/prod');
const failures: string[] = [];
const t0 = Date.now();
const say = (s: string) => process.stdout.write(`${s}\n`);
const fail = (s: string) => {
  failures.push(s);
  say(`FAIL: ${s}`);
};
const secs = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

async function main(): Promise<number> {
  try {
    preflight();
  } catch (err) {
    const msg = `SKIPPED: ${(err as Error).message}`;
    say(msg);
    return process.env.CI === 'true' ? 1 : 0;
  }
  if (!insideNode(tag)) return enterNode(tag);
  rmSync(stateDir, { recursive: true, force: true });
  ImageTable.prepareApp(repo, stateDir, say, { built: process.env.ORBPODS_BUILT === '1' });
  dist = resolve(process.env.ORBPODS_DIST ?? renderedEnv(repo, env, join(stateDir, 'dist')));
  if (breakCase) {
    const b = BREAKAGES[breakCase];
    const broken = join(stateDir, 'broken');
    const field = b.tree === 'prod' ? breakTree(prodDist, join(broken, 'prod'), b) : breakTree(dist, join(broken, env), b);
    if (b.tree === 'prod') prodDist = join(broken, 'prod');
    else dist = join(broken, env);
    say(`== --break ${breakCase}: ${b.change}\n   changed ${field} in a copy (${broken}); this run must fail and name it`);
  }
  // What the services require of their manifests, before any pod starts (a kubelet would start
  // them and they would crash-loop on their config error; the runner says which field first).
  const envCheck = envProblems([...loadDir(dist), ...(existsSync(join(dist, 'test')) ? loadDir(join(dist, 'test')) : [])]);
  for (const p of envCheck.problems) fail(`${p.object} container ${p.container} env: ${p.problem}`);
  if (envCheck.problems.length) return finish();
  const cluster = new Cluster({ env, dist, repo, stateDir, tag, log: (s) => say(`  [runner] ${s}`) });
  const ticker = setInterval(() => cluster.tick(), 200);
  try {
    say(`== up ${dist} (namespace ${cluster.namespace})`);
    await cluster.up();
    for (const n of cluster.notes) say(`  note: ${n}`);
    const first = await cluster.waitReady(Number(process.env.ORBPODS_READY_TIMEOUT_S ?? (breakCase ? 120 : 300)) * 1000);
    say(`== every pod ready after ${secs()}`);
    const seed = await cluster.jobResult(COMPONENTS.seedVault);
    if (seed && seed.phase !== 'Succeeded') fail(`Job/seed-vault ${seed.phase}: ${seed.reason ?? ''}\n${tail(seed.pod.dir, 'seed')}`);

    if (variant === 'fetch') {
      await checkModelFetch(cluster);
      // Counters start with each pod: everything since up, the fetches included, must have passed.
      const sinceUp = await totalDrops(cluster);
      say(`== packets dropped from up to every pod ready (model fetches included): ${sinceUp.total}`);
      if (sinceUp.total !== 0)
        fail(`${sinceUp.total} packets dropped before every pod was ready:\n${describeNewDrops(new Map(), sinceUp.records)}`);
    } else {
      say('== kubectl scale deployment orb-core --replicas=2');
      await cluster.scale('Deployment/orb-core', 2);
      await cluster.waitReady(120_000);
    }

    const testDir = join(dist, 'test');
    const testObjs = existsSync(testDir) ? loadDir(testDir) : [];
    await cluster.apply(testObjs);
    const before = await totalDrops(cluster);
    for (const job of byKind(testObjs, 'Job')) {
      say(`== ${ref(job)} (${(job.spec.template.spec.containers[0].command ?? []).join(' ')})`);
      const r = await cluster.runJob(job);
      say(indent(tail(r.pod.dir, job.spec.template.spec.containers[0].name, 40)));
      if (r.phase !== 'Succeeded') fail(`${ref(job)} ${r.phase}${r.reason ? ` (${r.reason})` : ''}`);
    }
    const after = await totalDrops(cluster);
    const dropped = after.total - before.total;
    say(`== packets dropped during the smoke run: ${dropped}`);
    if (dropped !== 0) fail(`${dropped} packets dropped during the smoke run:\n${describeNewDrops(before.records, after.records)}`);

    if (variant === 'fetch') await checkHubEgress(cluster);
    else await devPhases(cluster);

    say('\n== pods');
    const readyBy = new Map(first.map((r) => [r.pod, r.readyAfterS]));
    say(
      table(
        ['pod', 'owner', 'ready after (s)', 'restarts'],
        cluster
          .rows()
          .filter((r) => !r.owner.startsWith('Job/'))
          .map((r) => [r.pod, r.owner, String(readyBy.get(r.pod) ?? r.readyAfterS ?? '-'), String(r.restarts)]),
      ),
    );
  } catch (err) {
    fail((err as Error).message);
    // Refused connections name the policy edge that is missing.
    const drops = await cluster.drops().catch(() => []);
    for (const d of drops) for (const r of d.records) fail(`${dropLine(cluster, d.pod, r)} (${r.packets} packets)`);
    say(
      table(
        ['pod', 'owner', 'phase', 'ready', 'restarts', 'reason'],
        cluster.rows().map((r) => [r.pod, r.owner, r.phase, String(r.ready), String(r.restarts), r.reason ?? '']),
      ),
    );
    for (const r of cluster.rows().filter((x) => !x.ready))
      for (const c of cluster.pods.get(r.pod)?.statuses ?? [])
        say(indent(`${r.pod}/${c.name}:\n${tail(cluster.pods.get(r.pod)!.dir, c.name, 15)}`));
  } finally {
    clearInterval(ticker);
    await cluster.down();
  }
  return finish();
}

/** The summary; under --break the run passes only when it failed the way the case expects. */
function finish(): number {
  say(
    `\n== e2e:pods${variant ? ` --variant ${variant}` : ''}${breakCase ? ` --break ${breakCase}` : ''} ${failures.length ? `FAILED (${failures.length})` : 'passed'} in ${secs()}`,
  );
  for (const f of failures) say(`  - ${f.split('\n').slice(0, 8).join('\n    ')}`);
  if (breakCase) {
    const want = BREAKAGES[breakCase].expect;
    const caught = failures.some((f) => want.test(f));
    say(
      caught ? `== --break ${breakCase}: caught as expected (${want})` : `== --break ${breakCase}: NOT caught: no failure matches ${want}`,
    );
    return caught ? 0 : 1;
  }
  return failures.length ? 1 : 0;
}

/** dist/dev's own phases after the smoke run: CronJobs, every NetworkPolicy, KEDA triggers, scrapes. */
async function devPhases(cluster: Cluster): Promise<void> {
  for (const cj of byKind(cluster.objects, 'CronJob')) {
    say(`\n== ${ref(cj)} run once now (kubectl create job --from=cronjob/${cj.metadata.name})`);
    const r = await cluster.runCronJob(cj.metadata.name);
    say(indent(tail(r.pod.dir, cj.spec.jobTemplate.spec.template.spec.containers[0].name, 10)));
    if (r.phase !== 'Succeeded') fail(`${ref(cj)}: its job ${r.phase}${r.reason ? ` (${r.reason})` : ''}`);
  }
  await checkPolicies(cluster);
  await checkKeda(cluster);
  await checkScrapes(cluster);
}

// ---- the fetch variant: what model-fetch delivered, and who may reach the hub -------------------------

/**
 * Every model-fetch init container fetched each file of its MODEL_FILES from the stand-in hub and
 * verified it against the sha256 the manifest pins (the lock), then wrote the verified marker; the
 * hub's access log accounts for the bytes.
 */
async function checkModelFetch(cluster: Cluster): Promise<void> {
  say("\n== model-fetch: each speech worker's init container fetched and verified its models from the stand-in hub");
  const rows: string[][] = [];
  let fetchedBytes = 0;
  const fetchers = [...cluster.pods.values()].filter((p) => p.initContainers.some((c) => c.spec.name === 'model-fetch'));
  if (!fetchers.length) fail('no pod has a model-fetch init container: the variant renders none');
  for (const pod of fetchers) {
    const init = pod.initContainers.find((c) => c.spec.name === 'model-fetch')!;
    const want = JSON.parse(init.spec.env.find((e: { name: string }) => e.name === 'MODEL_FILES').value) as Array<{
      path: string;
      as?: string;
      sha256: string;
    }>;
    const log = existsSync(join(pod.dir, 'model-fetch.log')) ? readFileSync(join(pod.dir, 'model-fetch.log'), 'utf8') : '';
    const where = `${pod.ownerRef} pod ${pod.name} container model-fetch`;
    for (const f of want) {
      const line = log.split('\n').find((l) => l.startsWith(`model-fetch: ${f.path}: fetched `));
      if (!line) {
        fail(`${where}: no 'fetched' line for ${f.path}:\n${log.trim().split('\n').slice(-5).join('\n')}`);
        continue;
      }
      if (!line.includes(`sha256:${f.sha256} verified against the lock file`))
        fail(`${where}: ${f.path} was not verified against the lock's sha256 ${f.sha256}: ${line}`);
    }
    const ok = /model-fetch: OK (\d+) fetched \((\d+) bytes\), (\d+) cached, (\d+) verified in place, (\d+) ms/.exec(log);
    if (!ok) {
      fail(`${where}: no OK line`);
      continue;
    }
    if (Number(ok[1]) !== want.length) fail(`${where}: fetched ${ok[1]} of ${want.length} files`);
    if (!existsSync(join(pod.volumeDir('models'), '.verified.json'))) fail(`${where}: no .verified.json in the model volume`);
    fetchedBytes += Number(ok[2]);
    // The worker must serve from what was fetched, not from models its image also holds.
    const worker = pod.containers[0];
    const envOf = (c: { spec: { env?: Array<{ name: string; value?: string }> } }) =>
      c.spec.env?.find((e) => e.name === 'MODEL_DIR')?.value;
    const mountOf = (c: { spec: { volumeMounts?: Array<{ name: string; mountPath: string }> } }, dir?: string) =>
      c.spec.volumeMounts?.find((m) => m.mountPath === dir)?.name;
    const dir = envOf(init);
    if (envOf(worker) !== dir || !mountOf(worker, dir) || mountOf(worker, dir) !== mountOf(init, dir))
      fail(`${pod.ownerRef} container ${worker.spec.name}: MODEL_DIR ${envOf(worker)} is not the volume model-fetch filled (${dir})`);
    const loaded = readFileSync(join(pod.dir, `${worker.spec.name}.log`), 'utf8')
      .split('\n')
      .map((l) => /"model":"([^"]+)".*"msg":"whisper loaded"|"voices":(\[[^\]]*\]).*"msg":"voices listed"/.exec(l))
      .find(Boolean);
    rows.push([
      pod.name,
      `${ok[1]}/${want.length}`,
      ok[2],
      'sha256 = lock',
      `${ok[5]} ms`,
      String(init.status.restarts),
      `${dir}${loaded ? ` (${loaded[1] ? `whisper loaded from ${loaded[1]}` : `voices ${loaded[2]}`})` : ''}`,
    ]);
  }
  say(table(['pod', 'files', 'bytes', 'verified', 'fetch took', 'init restarts', 'worker reads'], rows));
  const hub = summarizeAccessLog(existsSync(cluster.hubLog) ? readFileSync(cluster.hubLog, 'utf8') : '');
  say(
    `  stand-in hub: ${hub.requests} requests (${Object.entries(hub.byStatus)
      .map(([k, v]) => `${v}× ${k}`)
      .join(', ')}), ${hub.bytes} bytes of model files sent; model-fetch received ${fetchedBytes}`,
  );
  if (hub.bytes < fetchedBytes)
    fail(`the stand-in hub sent ${hub.bytes} bytes but model-fetch reports ${fetchedBytes}: the files came from elsewhere`);
}

/** The hub is reachable from the speech workers only: each other pod's egress refuses it (counter rises). */
async function checkHubEgress(cluster: Cluster): Promise<void> {
  say('\n== egress to the stand-in hub: allowed for the speech workers only');
  const policies = byKind(cluster.objects, 'NetworkPolicy');
  const rows: string[][] = [];
  for (const h of cluster.hubs) {
    const hub = cluster.netPods().find((p) => p.namespace === h.namespace && p.name === h.service);
    if (!hub) {
      fail(`no stand-in pod for ${h.namespace}/${h.service}`);
      continue;
    }
    const seen = new Set<string>();
    for (const p of cluster.netPods().filter((x) => x.namespace === cluster.namespace && x.ready && cluster.pods.has(x.key))) {
      const owner = cluster.pods.get(p.key)!.ownerRef;
      if (seen.has(owner)) continue;
      seen.add(owner);
      const allowed = allows(p, hub, h.port, 'tcp', policies, cluster.netPods(), cluster.namespaceList);
      const c0 = await counter(p.netns, 'egress');
      const res = await connect(p, hub.ip, h.port);
      const c1 = await counter(p.netns, 'egress');
      const okRes = allowed ? res === 'connected' : res === 'timeout' && c1 > c0;
      if (!okRes)
        fail(
          `${p.name} → ${h.service}:${h.port}: the policies ${allowed ? 'allow' : 'forbid'} it, nftables gave ${res} (egress drops ${c0}→${c1})`,
        );
      rows.push([owner, allowed ? 'allowed' : 'forbidden', res, `${c0}→${c1}`]);
    }
  }
  say(table(['from', 'policies say', 'connection', 'egress drops'], rows));
}

// ---- NetworkPolicies: one refused connection per policy, one allowed peer ------------------------

type Endpoint = NetPod & { netns: string };

async function connect(from: Endpoint, ip: string, port: number): Promise<'connected' | 'refused' | 'timeout'> {
  const js = `const s=require('net').connect({host:'${ip}',port:${port}});s.setTimeout(1500);s.on('connect',()=>{console.log('connected');s.destroy()});s.on('timeout',()=>{console.log('timeout');s.destroy()});s.on('error',e=>console.log(e.code==='ECONNREFUSED'?'refused':'timeout'))`;
  const r = await run('ip', ['netns', 'exec', from.netns, process.execPath, '-e', js], { allowFail: true });
  return (r.stdout.trim() || 'timeout') as 'connected' | 'refused' | 'timeout';
}

async function counter(netns: string, dir: 'ingress' | 'egress'): Promise<number> {
  const r = await run('ip', ['netns', 'exec', netns, 'nft', '-j', 'list', 'table', 'inet', 'orbpod'], { allowFail: true });
  return r.code === 0 ? parseDrops(r.stdout).dropped[dir] : -1;
}

async function checkPolicies(cluster: Cluster): Promise<void> {
  say('\n== NetworkPolicies: a forbidden connection is dropped (counter rises), an allowed peer gets through');
  const policies = byKind(cluster.objects, 'NetworkPolicy');
  const intruder = await cluster.probePod('orbpods-intruder', { app: 'intruder' }, 'intruder');
  const rows: string[][] = [];
  for (const np of policies) {
    const ns = np.metadata.namespace ?? 'default';
    let pods = cluster.netPods();
    let selected = pods.filter((p) => p.namespace === ns && p.ports.length && selects(np.spec.podSelector ?? {}, p.labels));
    let probe: Endpoint | undefined;
    if (!selected.length) {
      probe = await cluster.probePod(ns, { ...(np.spec.podSelector?.matchLabels ?? {}) }, `as-${np.metadata.name}`);
      pods = cluster.netPods();
      selected = [{ ...probe, ready: true }];
    }
    const all = () => cluster.netPods();
    const ev = (s: NetPod, d: NetPod, port: number, proto = 'tcp') => allows(s, d, port, proto, policies, all(), cluster.namespaceList);
    const types: string[] = np.spec.policyTypes ?? ['Ingress'];
    const self = selected[0];
    if (types.includes('Ingress')) {
      const port = self.ports[0]?.containerPort ?? PORTS.http;
      // Forbidden: from a namespace no policy trusts (so the packet reaches this pod's ingress).
      if (ev(intruder, self, port)) rows.push([ref(np), 'ingress', `intruder → ${self.name}:${port} is allowed by the policies`, '-', '-']);
      else {
        const c0 = await counter(self.netns, 'ingress');
        const res = await connect(intruder, self.ip, port);
        const c1 = await counter(self.netns, 'ingress');
        const okDrop = res === 'timeout' && c1 > c0;
        if (!okDrop)
          fail(`${ref(np)}: intruder → ${self.name}:${port} should be dropped by ${self.name}'s ingress, got ${res} (counter ${c0}→${c1})`);
        const allowed = pods.find((p) => p.key !== self.key && p.key !== intruder.key && ev(p, self, port));
        let allowedRes = 'no allowed peer';
        if (allowed) {
          allowedRes = await connect(allowed, self.ip, port);
          if (allowedRes === 'timeout') fail(`${ref(np)}: ${allowed.name} → ${self.name}:${port} is allowed by the policies but timed out`);
        }
        rows.push([
          ref(np),
          'ingress',
          `intruder → ${self.name}:${port}: ${res}, drops ${c0}→${c1}`,
          allowed ? `${allowed.name} → ${self.name}:${port}` : '-',
          allowedRes,
        ]);
      }
    }
    if (types.includes('Egress')) {
      const targets = all().filter((p) => p.ports.length && p.key !== self.key && p.ready);
      const pairs = targets.flatMap((d) => d.ports.filter((pp) => pp.protocol === 'TCP').map((pp) => ({ d, port: pp.containerPort })));
      const forbidden = pairs.find((x) => !ev(self, x.d, x.port));
      const allowed = pairs.find((x) => ev(self, x.d, x.port) && x.d.namespace === ns) ?? pairs.find((x) => ev(self, x.d, x.port));
      if (!forbidden) rows.push([ref(np), 'egress', `${self.name}: every target is allowed`, '-', '-']);
      else {
        const c0 = await counter(self.netns, 'egress');
        const res = await connect(self, forbidden.d.ip, forbidden.port);
        const c1 = await counter(self.netns, 'egress');
        if (!(res === 'timeout' && c1 > c0))
          fail(
            `${ref(np)}: ${self.name} → ${forbidden.d.name}:${forbidden.port} should be dropped by ${self.name}'s egress, got ${res} (counter ${c0}→${c1})`,
          );
        let allowedRes = 'no allowed peer';
        if (allowed) {
          allowedRes = await connect(self, allowed.d.ip, allowed.port);
          if (allowedRes === 'timeout')
            fail(`${ref(np)}: ${self.name} → ${allowed.d.name}:${allowed.port} is allowed by the policies but timed out`);
        }
        rows.push([
          ref(np),
          'egress',
          `${self.name} → ${forbidden.d.name}:${forbidden.port}: ${res}, drops ${c0}→${c1}`,
          allowed ? `${self.name} → ${allowed.d.name}:${allowed.port}` : '-',
          allowedRes,
        ]);
      }
    }
    if (probe) await cluster.removeProbe(probe.key);
  }
  say(table(['policy', 'direction', 'forbidden connection', 'allowed peer', 'result'], rows));
}

// ---- KEDA triggers of dist/prod against the running vault ------------------------------------------

async function vaultClient(cluster: Cluster, user = 'orb'): Promise<Redis> {
  const vault = cluster.netPods().find((p) => p.labels.app === COMPONENTS.vault && p.ready);
  if (!vault) throw new Error('no ready vault pod');
  const pw = readFileSync(join(stateDir, `secrets/vault-acl/${user}-password`), 'utf8');
  return new Redis({ host: vault.ip, port: PORTS.vault, username: user, password: pw, maxRetriesPerRequest: 1, lazyConnect: false });
}

/**
 * The vault user a KEDA trigger authenticates as: the value of the env var its `usernameFromEnv`
 * names, on the scale target's container (KEDA reads it there), as dist/dev sets it.
 */
function triggerUser(cluster: Cluster, so: K8sObject, trig: { metadata: Record<string, string> }): string {
  const target = cluster.objects.find(
    (o) => o.kind === (so.spec.scaleTargetRef?.kind ?? 'Deployment') && o.metadata.name === so.spec.scaleTargetRef.name,
  );
  const envName = trig.metadata.usernameFromEnv;
  const value = target?.spec.template.spec.containers
    .flatMap((c: { env?: Array<{ name: string; value?: string }> }) => c.env ?? [])
    .find((e: { name: string }) => e.name === envName)?.value;
  if (!envName || !value)
    throw new Error(`${ref(so)}: usernameFromEnv '${envName}' is not set by ${so.spec.scaleTargetRef.name}'s containers in dist/dev`);
  return value;
}

async function groupsOf(redis: Redis, stream: string): Promise<Array<{ name: string; lag: number; pending: number }>> {
  const raw = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
  return raw.map((g) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < g.length; i += 2) o[String(g[i])] = g[i + 1];
    return { name: String(o.name), lag: Number(o.lag ?? 0), pending: Number(o.pending ?? 0) };
  });
}

async function orbCli(cluster: Cluster, args: string[], timeoutMs: number): Promise<string> {
  const orb = cluster.netPods().find((p) => p.labels.app === COMPONENTS.orbCore && p.ready);
  if (!orb) throw new Error('no ready orb-core pod');
  const key = readFileSync(join(stateDir, 'secrets/orb-smoke/api-key'), 'utf8');
  return new Promise((resolveOut) => {
    const child = spawn(
      process.execPath,
      [join(repo, 'build/services/cli/orb.js'), ...args, '--url', `http://${orb.ip}:${PORTS.http}`, '--timeout', String(timeoutMs)],
      { env: { ...process.env, ORB_API_KEY: key } },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('exit', () => resolveOut(out));
  });
}

/** KEDA scalers that read a stream's consumer-group lag (the plain and the Sentinel flavour). */
const REDIS_STREAM_TRIGGERS = new Set(['redis-streams', 'redis-sentinel-streams']);

async function checkKeda(cluster: Cluster): Promise<void> {
  say('\n== KEDA triggers (dist/prod) against the running vault');
  const scaled = existsSync(prodDist) ? byKind(loadDir(prodDist), 'ScaledObject') : [];
  if (!scaled.length) {
    say('  dist/prod renders no ScaledObject');
    return;
  }
  const wav = join(repo, 'test/fixtures/speech-16k.wav');
  {
    const rows: string[][] = [];
    let checkedTriggers = 0;
    for (const so of scaled) {
      for (const [i, trig] of (so.spec.triggers ?? []).entries()) {
        // prod's vault is a Sentinel set (redis-sentinel-streams); an external plain Redis gives redis-streams.
        if (!REDIS_STREAM_TRIGGERS.has(trig.type)) continue;
        checkedTriggers++;
        const field = `${ref(so)} spec.triggers[${i}].metadata`;
        const { stream, consumerGroup } = trig.metadata;
        // Read the lag as KEDA does: as the user the trigger authenticates as (its ACL must allow XINFO GROUPS).
        const user = triggerUser(cluster, so, trig);
        const asKeda = await vaultClient(cluster, user);
        try {
          const denied = await asKeda.xinfo('GROUPS', stream).then(
            () => '',
            (err: Error) => (/no such key/i.test(err.message) ? '' : err.message),
          );
          if (denied) {
            fail(`${field}: XINFO GROUPS ${stream} as vault user '${user}' (the user usernameFromEnv names): ${denied}`);
            continue;
          }
          const groups = await groupsOf(asKeda, stream);
          if (!groups.length) {
            fail(`${field}.stream '${stream}' does not exist in the running vault after the smoke turns`);
            continue;
          }
          const g = groups.find((x) => x.name === consumerGroup);
          if (!g) {
            fail(
              `${field}.consumerGroup '${consumerGroup}' is not a consumer group of ${stream} in the running vault (groups: ${groups.map((x) => x.name).join(', ')})`,
            );
            continue;
          }
          // The lag KEDA scales on must grow while the target's workers are stopped.
          const target = `${so.spec.scaleTargetRef?.kind ?? 'Deployment'}/${so.spec.scaleTargetRef.name}`;
          const w = cluster.workloads.get(target);
          const replicas = w?.replicas ?? 1;
          await cluster.scale(target, 0);
          const lag0 = g.lag;
          const turn = target.endsWith('/xtts')
            ? orbCli(cluster, ['say', 'hello there', '--speak'], 6000)
            : orbCli(cluster, ['ask', wav, '-o', join(stateDir, 'reply.wav')], 6000);
          let lag1 = lag0;
          for (let t = 0; t < 40 && lag1 <= lag0; t++) {
            await sleep(250);
            lag1 = (await groupsOf(asKeda, stream)).find((x) => x.name === consumerGroup)?.lag ?? lag0;
          }
          await turn;
          await cluster.scale(target, replicas);
          await cluster.waitReady(120_000);
          if (lag1 <= lag0)
            fail(`${field}: lag of group '${consumerGroup}' on ${stream} did not grow while ${target} was scaled to 0 (${lag0} → ${lag1})`);
          rows.push([ref(so), stream, consumerGroup, user, `${lag0} → ${lag1}`]);
        } finally {
          asKeda.disconnect();
        }
      }
    }
    // A trigger type this check does not know would otherwise pass silently (it did once: prod moved to Sentinel).
    if (!checkedTriggers)
      fail(
        `dist/prod renders ${scaled.length} ScaledObject(s) but no trigger of a type this check reads (${[...REDIS_STREAM_TRIGGERS].join(', ')}): ${scaled.map((so) => `${ref(so)}: ${(so.spec.triggers ?? []).map((t: { type: string }) => t.type).join(', ')}`).join('; ')}`,
      );
    say(table(['ScaledObject', 'stream', 'group', 'read as user', 'lag with workers stopped'], rows));
  }
}

// ---- scrape targets -----------------------------------------------------------------------------------

async function checkScrapes(cluster: Cluster): Promise<void> {
  say('\n== scrape targets answer Prometheus text (promtool check metrics)');
  if (!has('promtool')) {
    say('SKIPPED: promtool missing (apt-get install prometheus): scrape targets fetched but not linted');
  }
  const scraperNs = cluster.namespaceList.find((n) => n.name === 'monitoring')?.name;
  const scraper = cluster.netPods().find((p) => p.namespace === scraperNs);
  const rows: string[][] = [];
  const seen = new Set<string>();
  for (const p of cluster.netPods().filter((x) => cluster.pods.has(x.key) && x.ready)) {
    const pod = cluster.pods.get(p.key)!;
    const a = pod.annotations;
    if (a['prometheus.io/scrape'] !== 'true' || seen.has(pod.ownerRef)) continue;
    seen.add(pod.ownerRef);
    const path = a['prometheus.io/path'] ?? '/metrics';
    const port = Number(a['prometheus.io/port']);
    const what = `${pod.ownerRef} annotations prometheus.io/port=${port} prometheus.io/path=${path}`;
    if (!scraper) {
      fail(`${what}: no NetworkPolicy admits a monitoring namespace to scrape from`);
      continue;
    }
    const js = `fetch('http://${p.ip}:${port}${path}').then(async r=>{if(!r.ok){console.error('HTTP '+r.status);process.exit(1)}process.stdout.write(await r.text())}).catch(e=>{console.error(String(e.cause??e));process.exit(1)})`;
    const r = await run('ip', ['netns', 'exec', scraper.netns, process.execPath, '-e', js], { allowFail: true });
    if (r.code !== 0) {
      fail(`${what}: scrape from ${scraperNs} failed: ${r.stderr.trim()}`);
      continue;
    }
    let lint = 'not linted';
    if (has('promtool')) {
      const l = await run('promtool', ['check', 'metrics'], { input: r.stdout, allowFail: true });
      // prom-client's default Node.js/process metrics are its own naming; judge ours.
      const problems = (l.stdout + l.stderr).split('\n').filter((x) => x.trim() && !/^(nodejs_|process_)/.test(x.trim()));
      lint = problems.length ? problems.join('; ') : 'ok';
      if (problems.length) fail(`${what}: promtool check metrics: ${lint}`);
    }
    rows.push([pod.ownerRef, `${port}${path}`, `${r.stdout.split('\n').filter((x) => x && !x.startsWith('#')).length} samples`, lint]);
  }
  // prod's ServiceMonitors name a Service port and a path: the port must lead to the container
  // port the same workload serves here, and the path must be the one scraped above.
  const prod = existsSync(prodDist) ? loadDir(prodDist) : [];
  for (const sm of byKind(prod, 'ServiceMonitor')) {
    for (const [i, ep] of (sm.spec.endpoints ?? []).entries()) {
      const svc = byKind(prod, 'Service').find((s) => selectsAll(sm.spec.selector, s));
      const sp = svc?.spec.ports?.find((x: { name?: string }) => x.name === ep.port);
      if (!sp) fail(`${ref(sm)} spec.endpoints[${i}].port '${ep.port}' names no port of a Service it selects`);
      const devPod = [...cluster.pods.values()].find((p) => selects(sm.spec.selector, p.labels));
      if (devPod && (devPod.annotations['prometheus.io/path'] ?? '/metrics') !== (ep.path ?? '/metrics'))
        fail(`${ref(sm)} spec.endpoints[${i}].path '${ep.path}' is not the path the workload serves metrics on`);
    }
  }
  say(table(['workload', 'port/path', 'scraped', 'promtool'], rows));
}

function selectsAll(selector: { matchLabels?: Record<string, string> }, svc: K8sObject): boolean {
  return selects(selector, svc.metadata.labels ?? {});
}

// ---- helpers -------------------------------------------------------------------------------------------

async function totalDrops(cluster: Cluster): Promise<{ total: number; records: Map<string, number> }> {
  const rows = await cluster.drops();
  const records = new Map<string, number>();
  let total = 0;
  for (const r of rows) {
    total += r.dropped.ingress + r.dropped.egress;
    for (const x of r.records) records.set(dropLine(cluster, r.pod, x), x.packets);
  }
  return { total, records };
}

/**
 * A dropped connection named by its pods and by the policies that isolate the dropping pod in
 * that direction: the field a missing edge belongs in (`NetworkPolicy/x spec.ingress`).
 */
function dropLine(cluster: Cluster, pod: string, r: { dir: 'ingress' | 'egress'; peerPod: string; port: number; proto: string }): string {
  const self = cluster.netPods().find((p) => p.name === pod);
  const type = r.dir === 'ingress' ? 'Ingress' : 'Egress';
  const isolating = byKind(cluster.objects, 'NetworkPolicy').filter(
    (np) =>
      self &&
      (np.metadata.namespace ?? self.namespace) === self.namespace &&
      selects(np.spec.podSelector ?? {}, self.labels) &&
      (np.spec.policyTypes ?? ['Ingress']).includes(type),
  );
  const withRules = isolating.filter((np) => (np.spec[r.dir] ?? []).length);
  const named = (withRules.length ? withRules : isolating).map((np) => `${ref(np)} spec.${r.dir}`).join(', ');
  const edge = r.dir === 'ingress' ? `${r.peerPod} → ${pod}` : `${pod} → ${r.peerPod}`;
  return `${edge}:${r.port}/${r.proto} dropped by ${pod}'s ${r.dir}: ${named || 'no policy'} has no rule that admits it`;
}

function describeNewDrops(before: Map<string, number>, after: Map<string, number>): string {
  return [...after]
    .filter(([k, v]) => v > (before.get(k) ?? 0))
    .map(([k, v]) => `  ${k}: ${v - (before.get(k) ?? 0)} packets`)
    .join('\n');
}

function tail(dir: string, container: string, n = 20): string {
  const f = join(dir, `${container}.log`);
  return existsSync(f) ? readFileSync(f, 'utf8').trimEnd().split('\n').slice(-n).join('\n') : '(no log)';
}

const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (c ?? '').padEnd(w[i])).join(' | ')} |`;
  return [line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
