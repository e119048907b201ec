/**
 * npm run pods -- <command> <env> …   the pod runner's own kubectl, for a stack on this machine:
 *   up <env> [--timeout S]      run dist/<env> in the background; waits until every pod is ready
 *                               (dev-fetch: dev with model-fetch against a stand-in hub pod, rendered on the fly)
 *   status <env>                pods, readiness, restarts, drops
 *   scale <env> <kind/name> <n> like kubectl scale
 *   job <env> <file.yaml>       apply a file and run its Jobs to completion (e.g. dist/dev/test/test-pods.k8s.yaml)
 *   cronjob <env> <name>        run a CronJob's job once now (kubectl create job --from=cronjob/NAME)
 *   logs <env> <pod> [container]
 *   drops <env>                 dropped packets per pod, with the peer pod and port
 *   down <env> [--purge]        stop everything (--purge also forgets the PVC directories)
 * Test tooling, not a runtime: clusters are deployed with kubectl, Helm or Argo CD (README).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { Cluster } from './cluster';
import { ImageTable } from './images';
import { loadDir, renderedEnv } from './manifests';
import { enterNode, insideNode, preflight } from './node';
import { sleep } from './sh';

const repo = resolve(__dirname, '../..');
/** Environments rendered on request only (charts/environments.ts VARIANTS). */
const VARIANTS = ['dev-fetch'];
const stateOf = (env: string) => join(process.env.TMPDIR ?? '/tmp', `orbpods-${env}`);
const sockOf = (env: string) => join(stateOf(env), 'control.sock');

function call(env: string, method: string, path: string, body?: unknown, timeoutMs = 600_000): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = http.request(
      { socketPath: sockOf(env), method, path, timeout: timeoutMs, headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.on('data', (d) => {
          data += d;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('error', fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The supervisor: runs the cluster inside the node namespace and answers on a unix socket. */
async function serve(env: string): Promise<number> {
  const tag = `orbpods-${env}`;
  if (!insideNode(tag)) return enterNode(tag);
  const stateDir = stateOf(env);
  ImageTable.prepareApp(repo, stateDir, (s) => process.stdout.write(`${s}\n`));
  const cluster = new Cluster({ env, dist: renderedEnv(repo, env, join(stateDir, 'dist')), repo, stateDir, tag });
  const ticker = setInterval(() => cluster.tick(), 250);
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((r) => {
    stop = r;
  });
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => {
      raw += d;
    });
    req.on(
      'end',
      () =>
        void (async () => {
          const body = raw ? JSON.parse(raw) : {};
          const send = (status: number, data: unknown) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(data));
          };
          try {
            switch (`${req.method} ${req.url}`) {
              case 'GET /status':
                return send(200, { rows: cluster.rows(), notes: cluster.notes });
              case 'GET /drops':
                return send(200, await cluster.drops());
              case 'POST /scale':
                await cluster.scale(body.target, Number(body.replicas));
                return send(200, { ok: true });
              case 'POST /job': {
                const objs = loadDir(body.dir);
                await cluster.apply(objs.filter((o) => o.kind !== 'Job'));
                const results = [];
                for (const job of objs.filter((o) => o.kind === 'Job')) {
                  const r = await cluster.runJob(job);
                  results.push({
                    job: job.metadata.name,
                    phase: r.phase,
                    reason: r.reason,
                    log: readLog(r.pod.dir, job.spec.template.spec.containers[0].name),
                  });
                }
                return send(200, results);
              }
              case 'POST /cronjob': {
                const r = await cluster.runCronJob(body.name);
                return send(200, [
                  { job: body.name, phase: r.phase, reason: r.reason, log: readLog(r.pod.dir, r.pod.containers[0].spec.name) },
                ]);
              }
              case 'POST /down':
                send(200, { ok: true });
                stop();
                return;
              default:
                return send(404, { error: `no route ${req.method} ${req.url}` });
            }
          } catch (err) {
            send(400, { error: (err as Error).message });
          }
        })(),
    );
  });
  rmSync(sockOf(env), { force: true });
  server.listen(sockOf(env));
  process.on('SIGTERM', () => stop());
  try {
    await cluster.up();
  } catch (err) {
    process.stdout.write(`up failed: ${(err as Error).message}\n`);
    stop();
  }
  await stopped;
  clearInterval(ticker);
  server.close();
  await cluster.down();
  rmSync(sockOf(env), { force: true });
  return 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readLog(dir: string, container: string): string {
  const f = join(dir, `${container}.log`);
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

function printRows(rows: Array<Record<string, unknown>>): void {
  const cols = ['pod', 'owner', 'phase', 'ready', 'readyAfterS', 'restarts', 'ip', 'reason'];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (xs: string[]) =>
    xs
      .map((x, i) => x.padEnd(w[i]))
      .join('  ')
      .trimEnd();
  process.stdout.write(
    `${line(cols.map((c) => c.toUpperCase()))}\n${rows.map((r) => line(cols.map((c) => String(r[c] ?? '')))).join('\n')}\n`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [cmd, env = 'dev', ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help') {
    process.stdout.write(
      readFileSync(__filename, 'utf8')
        .split('*/')[0]
        .replace(/^\/\*\*?/, '')
        .replace(/^ \* ?/gm, ''),
    );
    return cmd ? 0 : 2;
  }
  if (cmd === 'serve') return serve(env);
  // A variant (dev-fetch) has no dist/ folder: `serve` renders it into the state folder.
  if (!existsSync(join(repo, 'dist', env)) && !VARIANTS.includes(env)) {
    process.stderr.write(`no dist/${env}: run npm run synth (variants: ${VARIANTS.join(', ')})\n`);
    return 2;
  }
  const running = existsSync(sockOf(env));
  switch (cmd) {
    case 'up': {
      preflight();
      const pidFile = join(stateOf(env), 'runner.pid');
      const alive = existsSync(pidFile) && isAlive(Number(readFileSync(pidFile, 'utf8')));
      if (running || alive) {
        process.stderr.write(`a stack for ${env} is already up or starting (npm run pods -- down ${env})\n`);
        return 1;
      }
      mkdirSync(stateOf(env), { recursive: true });
      const log = join(stateOf(env), 'runner.log');
      const child = spawn(process.execPath, [...process.execArgv, __filename, 'serve', env], {
        detached: true,
        stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
      });
      child.unref();
      writeFileSync(pidFile, String(child.pid));
      const timeout = Number(rest[rest.indexOf('--timeout') + 1]) || 300;
      const until = Date.now() + timeout * 1000;
      for (;;) {
        await sleep(1000);
        if (child.exitCode !== null || (!existsSync(sockOf(env)) && Date.now() > until)) {
          process.stderr.write(`the runner stopped; see ${log}\n`);
          return 1;
        }
        const st = await call(env, 'GET', '/status').catch(() => undefined);
        if (!st) continue;
        const rows = JSON.parse(st.body).rows as Array<{ ready: boolean; owner: string }>;
        const long = rows.filter((r) => !r.owner.startsWith('Job/'));
        if (long.length && long.every((r) => r.ready)) {
          printRows(rows);
          process.stdout.write(`${env} is up (runner log: ${log})\n`);
          return 0;
        }
        if (Date.now() > until) {
          printRows(rows);
          process.stderr.write(`not ready after ${timeout}s; it keeps running (npm run pods -- down ${env})\n`);
          return 1;
        }
      }
    }
    case 'status': {
      if (!running) {
        process.stdout.write(`${env}: not running\n`);
        return 3;
      }
      const st = JSON.parse((await call(env, 'GET', '/status')).body);
      printRows(st.rows);
      return 0;
    }
    case 'drops': {
      process.stdout.write(`${(await call(env, 'GET', '/drops')).body}\n`);
      return 0;
    }
    case 'scale': {
      const [target, n] = rest;
      const r = await call(env, 'POST', '/scale', { target, replicas: Number(n) });
      if (r.status !== 200) {
        process.stderr.write(`${JSON.parse(r.body).error}\n`);
        return 1;
      }
      process.stdout.write(`${target} scaled to ${n}\n`);
      return 0;
    }
    case 'job':
    case 'cronjob': {
      const r =
        cmd === 'job'
          ? await call(env, 'POST', '/job', { dir: resolve(rest[0] ?? join('dist', env, 'test')) })
          : await call(env, 'POST', '/cronjob', { name: rest[0] });
      if (r.status !== 200) {
        process.stderr.write(`${JSON.parse(r.body).error}\n`);
        return 1;
      }
      let ok = true;
      for (const j of JSON.parse(r.body)) {
        process.stdout.write(`${j.log}\njob ${j.job}: ${j.phase}${j.reason ? ` (${j.reason})` : ''}\n`);
        ok &&= j.phase === 'Succeeded';
      }
      return ok ? 0 : 1;
    }
    case 'logs': {
      const [pod, container] = rest;
      const dir = join(stateOf(env), 'pods', pod ?? '');
      if (!pod || !existsSync(dir)) {
        process.stderr.write(`no pod ${pod}\n`);
        return 1;
      }
      const name =
        container ??
        readdirSync(dir)
          .find((f) => f.endsWith('.log'))
          ?.replace(/\.log$/, '');
      process.stdout.write(readLog(dir, name ?? ''));
      return 0;
    }
    case 'down': {
      if (running) await call(env, 'POST', '/down').catch(() => undefined);
      for (let i = 0; i < 120 && existsSync(sockOf(env)); i++) await sleep(500);
      const pidFile = join(stateOf(env), 'runner.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8'));
        for (let i = 0; i < 60 && isAlive(pid); i++) await sleep(500); // the runner removes its namespaces
        rmSync(pidFile, { force: true });
      }
      if (rest.includes('--purge')) rmSync(stateOf(env), { recursive: true, force: true });
      process.stdout.write(`${env}: down\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command ${cmd} (npm run pods -- --help)\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  },
);
