/** The operator scripts: dev-secrets.sh (against a recording kubectl) and vault-restore.sh's data step (real Redis). */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { VAULT_HA_USERS, VAULT_USERS } from '../../infra';
import { freePort, startRedisServer } from '../../tools/redis/redis-server';

const ROOT = join(__dirname, '..', '..');

/** A kubectl that records Secrets as JSON files instead of talking to a cluster. */
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -eu
args=("$@"); [ "\${args[0]}" = -n ] && args=("\${args[@]:2}")
case "\${args[0]} \${args[1]:-}" in
  "get namespace") exit 0 ;;
  "get secret") [ -f "$FAKE_DIR/\${args[2]}.json" ] ;;
  "create secret")
    name=\${args[3]}; printf '{"name":"%s"' "$name"
    for a in "\${args[@]}"; do case "$a" in --from-file=*) kv=\${a#--from-file=}; printf ',"%s":"%s"' "\${kv%%=*}" "$(cat "\${kv#*=}")";; esac; done
    echo '}' ;;
  "apply -f") body=$(cat); name=$(echo "$body" | sed 's/.*"name":"\\([^"]*\\)".*/\\1/'); echo "$body" > "$FAKE_DIR/$name.json" ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 3 ;;
esac
`;

describe('scripts/dev-secrets.sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dev-secrets-'));
  const kubectl = join(dir, 'kubectl');
  const state = join(dir, 'state');
  beforeAll(() => {
    writeFileSync(kubectl, FAKE_KUBECTL);
    chmodSync(kubectl, 0o755);
    mkdirSync(state);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) =>
    execFileSync('bash', [join(ROOT, 'scripts', 'dev-secrets.sh'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, KUBECTL: kubectl, FAKE_DIR: state },
    });
  const secret = (name: string) => JSON.parse(readFileSync(join(state, `${name}.json`), 'utf8'));

  test('creates a random password per vault ACL user and a paired gateway/smoke API key, printing no value', () => {
    const out = run('ucm4-dev');
    const acl = secret('vault-acl');
    expect(
      Object.keys(acl)
        .filter((k) => k !== 'name')
        .sort(),
    ).toEqual([...VAULT_USERS, ...VAULT_HA_USERS].map((u) => `${u}-password`).sort());
    const values = [...VAULT_USERS, ...VAULT_HA_USERS].map((u) => acl[`${u}-password`]);
    for (const v of values) expect(v).toMatch(/^[0-9a-f]{48}$/);
    expect(new Set(values).size).toBe(values.length);
    const key = secret('orb-smoke')['api-key'];
    expect(secret('orb-api-keys').keys).toBe(`dev:${key}`);
    for (const v of [...values, key]) expect(out).not.toContain(v);
  });

  test('keeps existing Secrets unless --rotate', () => {
    const before = secret('vault-acl')['orb-password'];
    expect(run('ucm4-dev')).toContain('secret/vault-acl exists (kept');
    expect(secret('vault-acl')['orb-password']).toBe(before);
    expect(run('--rotate', 'ucm4-dev')).toContain('secret/vault-acl replaced');
    expect(secret('vault-acl')['orb-password']).not.toBe(before);
    expect(secret('orb-api-keys').keys).toBe(`dev:${secret('orb-smoke')['api-key']}`);
  });
});

describe('scripts/vault-restore.sh data step', () => {
  test('loads the snapshot into an AOF vault and keeps the old AOF aside', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-'));
    mkdirSync(join(dir, 'src-data'));
    const src = await startRedisServer({ dir: join(dir, 'src-data') });
    const data = join(dir, 'vault-data');
    try {
      const a = new Redis(src.url);
      await a.set('identity:seed', '{"name":"CaleonGenesis"}');
      await a.hset('session:s1', 'owner', 'k1');
      await a.save();
      await a.quit();
      await src.stop();
      // The vault's current data: an AOF holding other (newer, broken) state.
      mkdirSync(data);
      const port0 = await freePort();
      const old = await startRedisServer({ dir: data, port: port0, args: ['--appendonly', 'yes'] });
      const b = new Redis(old.url);
      await b.set('garbage', '1');
      await b.quit();
      await old.stop();
      expect(existsSync(join(data, 'appendonlydir'))).toBe(true);

      const out = execFileSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), '--local', data, join(dir, 'src-data', 'dump.rdb')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(out).toMatch(/restore: loaded 2 keys from dump\.rdb/);
      expect(readdirSync(data).some((f) => f.startsWith('appendonlydir.before-restore-'))).toBe(true);

      // The vault as it starts in the cluster: AOF on.
      const vault = await startRedisServer({ dir: data, args: ['--appendonly', 'yes'] });
      const c = new Redis(vault.url);
      try {
        expect(await c.get('identity:seed')).toContain('CaleonGenesis');
        expect(await c.hget('session:s1', 'owner')).toBe('k1');
        expect(await c.exists('garbage')).toBe(0);
      } finally {
        await c.quit();
        await vault.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A vault data dir as the pod leaves it: an AOF and an older dump.rdb. */
  function vaultData(dir: string): string {
    const data = join(dir, 'vault-data');
    mkdirSync(join(data, 'appendonlydir'), { recursive: true });
    writeFileSync(join(data, 'appendonlydir', 'appendonly.aof.1.base.rdb'), 'the vault as it was');
    writeFileSync(join(data, 'dump.rdb'), 'older dump');
    return data;
  }
  const untouched = (data: string) => {
    expect(readdirSync(data).sort()).toEqual(['appendonlydir', 'dump.rdb']);
    expect(readFileSync(join(data, 'appendonlydir', 'appendonly.aof.1.base.rdb'), 'utf8')).toBe('the vault as it was');
    expect(readFileSync(join(data, 'dump.rdb'), 'utf8')).toBe('older dump');
  };

  test('a truncated snapshot is refused before the data is touched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-'));
    try {
      mkdirSync(join(dir, 'src'));
      const src = await startRedisServer({ dir: join(dir, 'src') });
      const a = new Redis(src.url);
      for (let i = 0; i < 50; i++) await a.set(`session:s${i}`, 'x'.repeat(200));
      await a.save();
      await a.quit();
      await src.stop();
      const rdb = readFileSync(join(dir, 'src', 'dump.rdb'));
      writeFileSync(join(dir, 'cut.rdb'), rdb.subarray(0, Math.floor(rdb.length / 2)));
      const data = vaultData(dir);
      const r = spawnSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), '--local', data, join(dir, 'cut.rdb')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('is not a valid RDB (redis-check-rdb)');
      untouched(data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a snapshot redis-check-rdb passes but redis-server cannot load: the data is put back as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-'));
    try {
      // A function library that no longer compiles (same length, so the RDB stays well-formed;
      // no checksum, so redis-check-rdb, which does not compile functions, passes it).
      mkdirSync(join(dir, 'src'));
      const src = await startRedisServer({ dir: join(dir, 'src'), args: ['--rdbchecksum', 'no'] });
      const a = new Redis(src.url);
      await a.call('FUNCTION', 'LOAD', "#!lua name=broken\nredis.register_function('broken_f', function() return 1 end)");
      await a.set('session:s1', 'x');
      await a.save();
      await a.quit();
      await src.stop();
      const rdb = readFileSync(join(dir, 'src', 'dump.rdb'));
      const at = rdb.indexOf('return 1');
      expect(at).toBeGreaterThan(0);
      rdb.write('return (', at);
      writeFileSync(join(dir, 'broken.rdb'), rdb);
      expect(spawnSync('redis-check-rdb', [join(dir, 'broken.rdb')]).status).toBe(0);
      const data = vaultData(dir);
      const r = spawnSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), '--local', data, join(dir, 'broken.rdb')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(1);
      expect(r.stdout + r.stderr).toContain('Failed loading library');
      expect(r.stderr).toContain('restore: redis-server exited while loading');
      expect(r.stderr).toContain('is as it was before');
      untouched(data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing snapshot fails loudly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'restore-'));
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'vault-restore.sh'), '--local', dir, join(dir, 'nope.rdb')], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('snapshot');
  });
});
