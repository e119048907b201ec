/**
 * The vault's configuration run for real: the init container's ACL assembly script, the
 * rendered redis.conf and the backup CronJob's script, against a real redis-server.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Testing } from 'cdk8s';
import { BACKUP_SCRIPT, redisConf, Vault, VAULT_USERS, VaultBackup } from '../../infra';
import { assembleAclFile } from '../support/acl-file';
import { startRedisServer, type RedisServerHandle } from '../../tools/redis/redis-server';

const RES = {
  cpu: { request: '10m', limit: '100m' },
  memory: { request: '16Mi', limit: '64Mi' },
  ephemeralStorage: { request: '1Mi', limit: '8Mi' },
};

describe('vault ACL users on a real redis-server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-acl-'));
  const passwords: Record<string, string> = {};
  let server: RedisServerHandle;
  let serverArgs: string[] = [];
  const clients: Redis[] = [];
  const as = async (user: string) => {
    const c = new Redis({
      port: server.port,
      host: '127.0.0.1',
      username: user,
      password: passwords[user],
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: true,
    });
    clients.push(c);
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    // Secrets created with `kubectl create secret --from-literal` have no newline; files often do.
    Object.assign(passwords, assembleAclFile(dir, { newlineFor: ['cali'] }));
    // The rendered redis.conf as arguments (they override the helper's defaults), minus the
    // pod's listen address and paths, which the helper sets for this test.
    const args = redisConf('64mb')
      .split('\n')
      .filter((l) => l && !/^(bind|port|dir|aclfile) /.test(l))
      .flatMap((l) => {
        const [k, ...v] = l.split(' ');
        return [`--${k}`, ...v];
      });
    serverArgs = [...args, '--aclfile', join(dir, 'users.acl')];
    server = await startRedisServer({ dir, args: serverArgs });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the assembled ACL file holds only password hashes, never a password', () => {
    const acl = readFileSync(join(dir, 'users.acl'), 'utf8');
    for (const [user, pw] of Object.entries(passwords)) {
      expect(acl).not.toContain(pw);
      expect(acl).toMatch(new RegExp(`^user ${user} reset on #[0-9a-f]{64} `, 'm'));
    }
    expect(acl).toMatch(/^user default off/m);
  });

  test('the rendered redis.conf is what the server runs: AOF on, noeviction', async () => {
    const orb = await as('orb');
    expect(await orb.info('persistence')).toMatch(/aof_enabled:1/);
    expect(await orb.info('memory')).toMatch(/maxmemory_policy:noeviction/);
  });

  test('the default user is off: no anonymous access', async () => {
    const anon = new Redis({
      port: server.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    clients.push(anon);
    await anon.connect().catch(() => undefined);
    await expect(anon.get('identity:seed')).rejects.toThrow(/NOAUTH|WRONGPASS|NOPERM/);
  });

  test('seed writes identity:*; the gateway and CALI read it; nobody else writes it', async () => {
    const seed = await as('seed');
    await seed.set('identity:seed', '{"name":"CaleonGenesis","version":"1.12"}');
    for (const user of ['orb', 'whisperx', 'xtts', 'core', 'cali']) {
      const c = await as(user);
      // Only the gateway (heartbeats, /v1/identity) and CALI (replies) read the identity.
      if (user === 'orb' || user === 'cali') expect(await c.get('identity:seed')).toContain('CaleonGenesis');
      else await expect(c.get('identity:seed')).rejects.toThrow(/NOPERM/);
      await expect(c.set('identity:seed', 'x')).rejects.toThrow(/NOPERM/);
    }
    await expect(seed.set('session:x', '1')).rejects.toThrow(/NOPERM/);
  });

  test('each service reaches only its key families', async () => {
    const orb = await as('orb');
    await orb.hset('session:s1', 'owner', 'k1');
    await orb.xadd('acp:jobs:whisperx', '*', 'job', '{}');
    await orb.set('orb:replica:orb-core-0', '1', 'PX', 15000);
    await expect(orb.hset('memory:s1', 'fact', 'x')).rejects.toThrow(/NOPERM/);
    const cali = await as('cali');
    await cali.hset('memory:s1', 'fact', 'likes tea');
    // CALI never reads session records (services/workers/cali): neither read nor write.
    await expect(cali.hget('session:s1', 'owner')).rejects.toThrow(/NOPERM/);
    await expect(cali.hset('session:s1', 'owner', 'evil')).rejects.toThrow(/NOPERM/);
    const xtts = await as('xtts');
    await xtts.xadd('turn:s1:events', '*', 'type', 'audio');
    await expect(xtts.hget('session:s1', 'owner')).rejects.toThrow(/NOPERM/);
    await expect(xtts.hget('memory:s1', 'fact')).rejects.toThrow(/NOPERM/);
    await expect(xtts.set('orb:replica:x', '1')).rejects.toThrow(/NOPERM/);
  });

  test('no service may wipe or reconfigure the vault', async () => {
    for (const user of ['orb', 'whisperx', 'xtts', 'core', 'cali', 'seed']) {
      const c = await as(user);
      await expect(c.flushall()).rejects.toThrow(/NOPERM/);
      await expect(c.config('SET', 'appendonly', 'no')).rejects.toThrow(/NOPERM/);
      await expect(c.keys('*')).rejects.toThrow(/NOPERM/);
    }
  });

  test('a MULTI/EXEC block survives a vault restart: the AOF replays it under the (off) default user', async () => {
    const orb = await as('orb');
    await orb.multi().hset('session:tx', 'owner', 'k1').expire('session:tx', 600).sadd('session:index:k1', 'tx').exec();
    const port = server.port;
    await server.stop();
    server = await startRedisServer({ dir, port, args: serverArgs });
    // A -@all default user made Redis drop every MULTI block of the AOF here (redis/redis#14541).
    expect(await (await as('orb')).hgetall('session:tx')).toEqual({ owner: 'k1' });
  });

  test('backup may snapshot but read no key', async () => {
    const backup = await as('backup');
    expect(await backup.info('persistence')).toMatch(/rdb_last_bgsave_status/);
    await expect(backup.get('identity:seed')).rejects.toThrow(/NOPERM/);
    await expect(backup.set('x', '1')).rejects.toThrow(/NOPERM/);
  });

  test('the backup script snapshots over the network and keeps only the newest KEEP files', () => {
    const backupDir = join(dir, 'backups');
    mkdirSync(backupDir);
    // Older snapshots from previous runs (names sort by time).
    for (const stamp of ['20200101T000000Z', '20200102T000000Z', '20200103T000000Z'])
      writeFileSync(join(backupDir, `vault-${stamp}.rdb`), 'old');
    writeFileSync(join(dir, 'backup.sh'), BACKUP_SCRIPT);
    const out = execFileSync('sh', [join(dir, 'backup.sh')], {
      encoding: 'utf8',
      timeout: 150_000,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(server.port),
        REDIS_USERNAME: 'backup',
        REDIS_PASSWORD: passwords.backup,
        BACKUP_DIR: backupDir,
        KEEP: '2',
      },
    });
    expect(out).toMatch(/wrote vault-\d{8}T\d{6}Z\.rdb; kept 2/);
    const files = readdirSync(backupDir).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toBe('vault-20200103T000000Z.rdb');
    const fresh = readFileSync(join(backupDir, files[1]));
    expect(fresh.subarray(0, 5).toString()).toBe('REDIS');
    // Full-read by design (docs/deploy.md, "Backups"): the snapshot holds the keyspace...
    expect(fresh.includes('identity:seed')).toBe(true);
    // ...but no service credential: ACL users live in the ACL file (memory emptyDir), never in the RDB.
    for (const pw of Object.values(passwords)) {
      expect(fresh.includes(pw)).toBe(false);
      expect(fresh.includes(createHash('sha256').update(pw).digest('hex'))).toBe(false);
    }
    expect(/user (orb|whisperx|xtts|core|cali|seed|backup) /.test(fresh.toString('latin1'))).toBe(false);
  }, 180_000);
});

describe('Vault construct', () => {
  test('StatefulSet with AOF data on volumeClaimTemplates, an ACL init container and passwords only from Secret vault-acl', () => {
    const chart = Testing.chart();
    new Vault(chart, 'vault', { image: 'redis:7.4.1', resources: RES, storage: '1Gi' });
    const objs = Testing.synth(chart);
    const sts = objs.find((o) => o.kind === 'StatefulSet');
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(sts.spec.serviceName).toBe('vault');
    expect(sts.spec.template.spec.initContainers[0].command.slice(0, 2)).toEqual(['sh', '/etc/redis/acl-rules/assemble-acl.sh']);
    expect(sts.spec.template.spec.volumes).toContainEqual({ name: 'acl-secret', secret: { secretName: 'vault-acl', defaultMode: 0o440 } });
    const rules = objs.find((o) => o.metadata.name === 'vault-acl-rules');
    expect(Object.keys(rules.data).sort()).toEqual(['assemble-acl.sh', ...VAULT_USERS.map((u) => `${u}.rules`)].sort());
    expect(objs.find((o) => o.metadata.name === 'vault-config').data['redis.conf']).toMatch(
      /appendonly yes[\s\S]*maxmemory-policy noeviction/,
    );
  });

  test("invariants name the prop: 'maxMemory'", () => {
    expect(() => new Vault(Testing.chart(), 'v', { image: 'redis:7', resources: RES, storage: '1Gi', maxMemory: '1 GB' })).toThrow(
      "'maxMemory' (1 GB)",
    );
  });

  test('VaultBackup: CronJob with deadlines, Forbid concurrency, ttl, and a PVC', () => {
    const chart = Testing.chart();
    new VaultBackup(chart, 'b', {
      image: 'redis:7.4.1',
      resources: RES,
      storage: '5Gi',
      keep: 7,
      vault: { mode: 'in-cluster', serviceName: 'vault', port: 6379 },
    });
    const objs = Testing.synth(chart);
    const cj = objs.find((o) => o.kind === 'CronJob');
    expect(cj.spec).toMatchObject({ concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 600 });
    expect(cj.spec.jobTemplate.spec).toMatchObject({ activeDeadlineSeconds: 1800, ttlSecondsAfterFinished: 86400 });
    expect(cj.spec.jobTemplate.spec.template.spec.restartPolicy).toBe('OnFailure');
    expect(cj.spec.jobTemplate.spec.template.spec.containers[0].env).toContainEqual({ name: 'KEEP', value: '7' });
    expect(objs.find((o) => o.kind === 'PersistentVolumeClaim').metadata.name).toBe('vault-backup');
    expect(
      () =>
        new VaultBackup(Testing.chart(), 'b', {
          image: 'r:1',
          resources: RES,
          storage: '1Gi',
          keep: 0,
          vault: { mode: 'in-cluster', serviceName: 'vault', port: 6379 },
        }),
    ).toThrow("'keep' (0)");
  });

  test('replicas 3: Redis + Sentinel per pod, spread over hosts (required) and zones, PDB keeps a majority, clients get the Sentinels', () => {
    const chart = Testing.chart();
    const v = new Vault(chart, 'vault', { image: 'redis:7.4.1', resources: RES, storage: '1Gi', replicas: 3 });
    const objs = Testing.synth(chart);
    const sts = objs.find((o) => o.kind === 'StatefulSet');
    const pod = sts.spec.template.spec;
    expect(sts.spec).toMatchObject({ replicas: 3, podManagementPolicy: 'OrderedReady', serviceName: 'vault' });
    expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(['redis', 'sentinel']);
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      { labelSelector: { matchLabels: { app: 'vault' } }, topologyKey: 'kubernetes.io/hostname' },
    ]);
    expect(pod.topologySpreadConstraints[0]).toMatchObject({
      topologyKey: 'topology.kubernetes.io/zone',
      whenUnsatisfiable: 'DoNotSchedule',
      maxSkew: 1,
    });
    expect(objs.find((o) => o.kind === 'PodDisruptionBudget').spec.minAvailable).toBe(2);
    const svc = objs.find((o) => o.kind === 'Service');
    expect(svc.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    expect(svc.spec.ports.map((p: { port: number }) => p.port)).toEqual([6379, 26379]);
    const conf = objs.find((o) => o.metadata.name === 'vault-config').data['redis.conf'];
    expect(conf).toMatch(/appendonly yes[\s\S]*min-replicas-to-write 1\nmin-replicas-max-lag 10/);
    const rules = objs.find((o) => o.metadata.name === 'vault-acl-rules').data;
    expect(rules['replication.rules']).toBe('resetkeys resetchannels -@all +psync +replconf +ping');
    expect(Object.keys(objs.find((o) => o.metadata.name === 'vault-sentinel-acl-rules').data).sort()).toEqual(
      [...VAULT_USERS, 'sentinel'].map((u) => `${u}.rules`).sort(),
    );
    const env = Object.fromEntries(
      pod.containers[1].env.filter((e: { value?: string }) => e.value).map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(env).toMatchObject({
      VAULT_SELF: '$(POD_NAME).vault.$(POD_NAMESPACE).svc.cluster.local',
      SENTINEL_QUORUM: '2',
      SENTINEL_DOWN_AFTER_MS: '5000',
      SENTINEL_FAILOVER_TIMEOUT_MS: '15000',
    });
    expect(env.VAULT_NODES.split(' ')).toEqual([0, 1, 2].map((i) => `vault-${i}.vault.$(POD_NAMESPACE).svc.cluster.local`));
    expect(pod.containers[0].lifecycle.preStop.exec.command).toEqual(['sh', '/etc/redis/conf/prestop.sh']);
    expect(v.endpoint).toEqual({
      mode: 'in-cluster',
      serviceName: 'vault',
      port: 6379,
      sentinels: ['vault-0.vault:26379', 'vault-1.vault:26379', 'vault-2.vault:26379'],
      sentinelMaster: 'vault',
    });
  });

  test("HA invariants name the prop: 'replicas', 'ha.minReplicasToWrite', 'ha.failoverTimeoutMilliseconds'", () => {
    const make = (extra: object) => () => new Vault(Testing.chart(), 'v', { image: 'redis:7', resources: RES, storage: '1Gi', ...extra });
    expect(make({ replicas: 2 })).toThrow("'replicas' (2) must be 1 or an odd integer >= 3");
    expect(make({ replicas: 3, ha: { minReplicasToWrite: 3 } })).toThrow("'ha.minReplicasToWrite' (3) must be an integer in 1..2");
    expect(make({ replicas: 3, ha: { downAfterMilliseconds: 5000, failoverTimeoutMilliseconds: 5000 } })).toThrow(
      "'ha.failoverTimeoutMilliseconds' (5000) must exceed",
    );
  });

  test('VaultBackup offsite: snapshot as init container (redis image), upload in the app image with keys by secretKeyRef', () => {
    const chart = Testing.chart();
    new VaultBackup(chart, 'b', {
      image: 'redis:7.4.1',
      resources: RES,
      storage: '5Gi',
      vault: { mode: 'in-cluster', serviceName: 'vault', port: 6379 },
      offsite: {
        endpoint: 'https://s3.example.com',
        bucket: 'b1',
        prefix: 'p/',
        credentialsSecret: { secret: 's3', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
        image: 'ucm4/orb:1',
      },
    });
    const pod = Testing.synth(chart).find((o) => o.kind === 'CronJob').spec.jobTemplate.spec.template.spec;
    expect(pod.initContainers.map((c: { name: string; image: string }) => [c.name, c.image])).toEqual([['backup', 'redis:7.4.1']]);
    const up = pod.containers[0];
    expect([up.name, up.image, up.command]).toEqual(['upload', 'ucm4/orb:1', ['node', 'build/services/vault-backup/upload.js']]);
    expect(up.env).toContainEqual({ name: 'BACKUP_S3_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 's3', key: 'key' } } });
    expect(up.env).toContainEqual({ name: 'BACKUP_S3_BUCKET', value: 'b1' });
    expect(up.volumeMounts).toContainEqual({ name: 'backup', mountPath: '/backup', readOnly: true });
    expect(
      () =>
        new VaultBackup(Testing.chart(), 'b', {
          image: 'r:1',
          resources: RES,
          storage: '1Gi',
          vault: { mode: 'in-cluster', serviceName: 'vault', port: 6379 },
          offsite: {
            endpoint: 's3.example.com',
            bucket: 'b1',
            credentialsSecret: { secret: 's3', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
            image: 'ucm4/orb:1',
          },
        }),
    ).toThrow("'offsite.endpoint' (s3.example.com)");
  });
});
