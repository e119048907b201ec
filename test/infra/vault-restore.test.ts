/**
 * scripts/vault-restore.sh's kubectl half, against dist/: a recording kubectl answers the script's
 * questions from the committed manifests, and every object the script names, every PVC it mounts
 * and the order it scales in are checked against them (prod: the HA vault; dev: one node).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const ROOT = join(__dirname, '..', '..');

/** Logs each call (and an applied body) as one JSON line; answers gets from FAKE_* variables. */
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -eu
body=''
if [ "\${@: -2:1}" = "-f" ] && [ "\${@: -1}" = "-" ]; then body=$(cat); fi
BODY="$body" node -e 'process.stdout.write(JSON.stringify({ args: process.argv.slice(1), body: process.env.BODY || undefined }) + "\\n")' -- "$@" >> "$FAKE_LOG"
args=("$@"); [ "\${args[0]}" = -n ] && args=("\${args[@]:2}")
case "\${args[0]} \${args[1]:-} \${args[2]:-}" in
  "get statefulset vault")
    case "\${args[4]}" in
      *image*) echo -n "$FAKE_IMAGE" ;;
      *replicas*) echo -n "$FAKE_REPLICAS" ;;
      *) exit 3 ;;
    esac ;;
  "get pods -l") echo -n "\${FAKE_LEFT_PODS:-}" ;;
  "logs vault-restore "*) echo "vault-20260101T000000Z.rdb" ;;
esac
exit 0
`;

interface Call {
  args: string[];
  body?: string;
}

function objects(env: string): any[] {
  const dir = join(ROOT, 'dist', env);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.k8s.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS()));
}

describe.each(['prod', 'dev'])('scripts/vault-restore.sh against dist/%s', (env) => {
  const objs = objects(env);
  const find = (kind: string, name: string) => objs.find((o) => o?.kind === kind && o.metadata?.name === name);
  const sts = find('StatefulSet', 'vault');
  const ns = sts.metadata.namespace;
  const replicas: number = sts.spec.replicas;
  const redis = sts.spec.template.spec.containers.find((c: any) => c.name === 'redis');
  const dir = mkdtempSync(join(tmpdir(), 'vault-restore-'));
  let calls: Call[] = [];

  beforeAll(() => {
    writeFileSync(join(dir, 'kubectl'), FAKE_KUBECTL);
    chmodSync(join(dir, 'kubectl'), 0o755);
    execFileSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), ns], {
      encoding: 'utf8',
      env: {
        ...process.env,
        KUBECTL: join(dir, 'kubectl'),
        FAKE_LOG: join(dir, 'log'),
        FAKE_IMAGE: redis.image,
        FAKE_REPLICAS: String(replicas),
      },
    });
    calls = readFileSync(join(dir, 'log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const index = (pred: (c: Call) => boolean) => calls.findIndex(pred);
  const has = (c: Call, ...words: string[]) => words.every((w) => c.args.includes(w));

  test('every call is in the vault namespace and names objects that dist/ renders', () => {
    for (const c of calls) expect(c.args.slice(0, 2)).toEqual(['-n', ns]);
    expect(find('CronJob', 'vault-backup')).toBeDefined();
    expect(find('PersistentVolumeClaim', 'vault-backup')).toBeDefined();
    for (const c of calls.filter((x) => ['scale', 'rollout'].includes(x.args[2]) || (x.args[2] === 'get' && x.args[3] !== 'pods')))
      expect(c.args).toContain('vault');
    expect(calls.some((c) => has(c, 'patch', 'cronjob', 'vault-backup'))).toBe(true);
  });

  test("the restore pod mounts the PVCs the StatefulSet and the CronJob use, with the vault's redis image", () => {
    const pods = calls.filter((c) => c.body).map((c) => JSON.parse(c.body!));
    const restore = pods[pods.length - 1];
    const claims = restore.spec.volumes
      .filter((v: any) => v.persistentVolumeClaim)
      .map((v: any) => v.persistentVolumeClaim.claimName)
      .sort();
    // volumeClaimTemplates 'data' of StatefulSet 'vault', ordinal 0: the PVC the primary-to-be mounts.
    const template = sts.spec.volumeClaimTemplates[0].metadata.name;
    expect(claims).toEqual([`${template}-vault-0`, 'vault-backup'].sort());
    expect(restore.spec.containers[0].image).toBe(redis.image);
    // The body is valid JSON and the multi-line restore step arrives intact (it was once sent raw,
    // which kubectl would have read as YAML, folding the script into one line).
    const [sh, dashC, step, arg0, data, snap] = restore.spec.containers[0].command;
    expect([sh, dashC, arg0, data, snap]).toEqual(['sh', '-c', 'restore', '/data', '/backup/vault-20260101T000000Z.rdb']);
    const script = readFileSync(join(ROOT, 'scripts', 'vault-restore.sh'), 'utf8');
    expect(script).toContain(`RESTORE_STEP='${step}'`);
    const cron = find('CronJob', 'vault-backup').spec.jobTemplate.spec.template.spec;
    expect(cron.volumes.find((v: any) => v.name === 'backup').persistentVolumeClaim.claimName).toBe('vault-backup');
    // Same restricted profile as the workloads.
    expect(restore.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(restore.spec.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  test('order: suspend backups, scale to 0, wait for every pod, restore, scale back to the rendered replicas', () => {
    const suspend = index((c) => has(c, 'patch', 'cronjob') && c.args.join(' ').includes('"suspend":true'));
    const down = index((c) => has(c, 'scale', 'statefulset', 'vault', '--replicas=0'));
    const waits = [...Array(replicas).keys()].map((i) => index((c) => has(c, 'wait', `pod/vault-${i}`) && c.args.includes('--for=delete')));
    // After the waits (which may time out), a check that no pod of the StatefulSet is left, by its own selector.
    const selector = Object.entries(sts.spec.selector.matchLabels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const leftCheck = index((c) => has(c, 'get', 'pods', '-l', selector));
    const restoreApply = calls.map((c, i) => (c.body && c.body.includes('data-vault-0') ? i : -1)).filter((i) => i >= 0);
    const up = index((c) => has(c, 'scale', 'statefulset', 'vault', `--replicas=${replicas}`));
    const rollout = index((c) => has(c, 'rollout', 'status', 'statefulset', 'vault'));
    const resume = index((c) => has(c, 'patch', 'cronjob') && c.args.join(' ').includes('"suspend":false'));
    expect(suspend).toBeGreaterThanOrEqual(0);
    expect(down).toBeGreaterThan(suspend);
    for (const w of waits) expect(w).toBeGreaterThan(down);
    expect(restoreApply).toHaveLength(1);
    expect(leftCheck).toBeGreaterThan(Math.max(...waits));
    expect(restoreApply[0]).toBeGreaterThan(leftCheck);
    expect(up).toBeGreaterThan(restoreApply[0]);
    expect(rollout).toBeGreaterThan(up);
    expect(resume).toBeGreaterThan(rollout);
  });

  test('a vault pod still there after the waits: the script stops before touching data-vault-0 and resumes backups', () => {
    const log = join(dir, 'log-left');
    let failed: { status: number; stderr: string } | undefined;
    try {
      execFileSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), ns], {
        encoding: 'utf8',
        stdio: 'pipe',
        env: {
          ...process.env,
          KUBECTL: join(dir, 'kubectl'),
          FAKE_LOG: log,
          FAKE_IMAGE: redis.image,
          FAKE_REPLICAS: String(replicas),
          FAKE_LEFT_PODS: 'pod/vault-0',
        },
      });
    } catch (err) {
      failed = err as { status: number; stderr: string };
    }
    expect(failed?.status).toBe(1);
    expect(failed?.stderr).toContain('vault pod(s) still present after scale-down: pod/vault-0');
    const left: Call[] = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(left.some((c) => c.body?.includes('data-vault-0'))).toBe(false);
    expect(left.some((c) => has(c, 'scale', 'statefulset', 'vault', `--replicas=${replicas}`))).toBe(false);
    expect(left.at(-1)!.args.join(' ')).toContain('"suspend":false');
  });

  test('what the restore relies on for the HA vault: vault-0 starts first and no Sentinel state outlives its pod', () => {
    if (replicas === 1) {
      expect(redis.command).toEqual(['redis-server', '/etc/redis/conf/redis.conf']);
      return;
    }
    // vault-0 (the restored data) is up before vault-1 asks who the primary is: it bootstraps as the primary.
    expect(sts.spec.podManagementPolicy).toBe('OrderedReady');
    const spec = sts.spec.template.spec;
    const sentinel = spec.containers.find((c: any) => c.name === 'sentinel');
    const volumes = new Map<string, any>(spec.volumes.map((v: any) => [v.name, v]));
    // Sentinel's config (its view of who is primary) lives only in memory-backed volumes, never on a PVC.
    for (const m of sentinel.volumeMounts) {
      expect(m.name).not.toBe(sts.spec.volumeClaimTemplates[0].metadata.name);
      expect(volumes.get(m.name)?.persistentVolumeClaim).toBeUndefined();
    }
    const run = sentinel.volumeMounts.find((m: any) => m.name === 'run');
    expect(volumes.get('run').emptyDir.medium).toBe('Memory');
    expect(sentinel.env.find((e: any) => e.name === 'VAULT_RUN_DIR').value).toBe(run.mountPath);
    // The bootstrap node of the start scripts is vault-0.
    expect(redis.env.find((e: any) => e.name === 'VAULT_NODES').value.split(' ')[0]).toMatch(/^vault-0\./);
  });
});
