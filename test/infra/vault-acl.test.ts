/**
 * The rendered vault ACL (infra/vault-acl.ts) loaded into a redis-server of this test's own, as
 * the vault's init container assembles it, and checked against EVERY command the server lists in
 * `COMMAND` (each subcommand of a container on its own): every user is refused everything outside
 * its allow-list with NOPERM, allowed exactly what the list says, and refused writes and reads of
 * other roles' key families. The forbidden set is derived from the server's own ACL categories,
 * not hand-picked; two deliberately wrong rules show the checks can fail.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { aclRules, allowedCommands, VAULT_GRANTS, VAULT_USERS, type VaultUser } from '../../infra/vault-acl';
import { assembleAclFile } from '../support/acl-file';
import { RedisServerHandle, startRedisServer } from '../../tools/redis/redis-server';

jest.setTimeout(120_000);

// ---- the spec, written independently of infra/vault-acl.ts -----------------------------------

/** One sample key per key family (docs/vault-keys.md). */
const FAMILIES = {
  session: ['session:s1', 'session:index:k1'],
  turn: ['turn:s1:events', 'turn:s1:seq', 'turn:s1:t1', 'turn:s1:t1:audio', 'turn:s1:t1:abandoned', 'turn:deadlines'],
  memory: ['memory:s1'],
  identity: ['identity:seed', 'identity:version'],
  orb: ['orb:replica:orb-core-0', 'orb:replica:index', 'orb:ratelimit:k1', 'orb:sockets:k1', 'orb:ticket:ab12'],
  models: ['acp:models'],
  done: ['acp:done:job-1'],
  'queue:whisperx': ['acp:jobs:whisperx'],
  'dlq:whisperx': ['acp:dlq:whisperx'],
  'queue:xtts': ['acp:jobs:xtts'],
  'dlq:xtts': ['acp:dlq:xtts'],
  'queue:core': ['acp:jobs:core:0', 'acp:jobs:core:4'],
  'dlq:core': ['acp:dlq:core:0'],
  'queue:cali': ['acp:jobs:cali'],
  'dlq:cali': ['acp:dlq:cali'],
  'alive:whisperx': ['acp:alive:whisperx', 'acp:alive:whisperx:whisperx-0'],
  'alive:xtts': ['acp:alive:xtts', 'acp:alive:xtts:xtts-0'],
  'alive:core': ['acp:alive:core:0', 'acp:alive:core:0:core4-0'],
  'alive:cali': ['acp:alive:cali', 'acp:alive:cali:cali-0'],
  foreign: ['other:x', 'acp:jobs:evil', 'acp:other', 'acp:alive:evil'],
} as const;
type Family = keyof typeof FAMILIES;

/** Families each role writes (its job), read from the services' calls. */
const WRITES: Record<VaultUser, Family[]> = {
  orb: ['session', 'turn', 'orb', 'models'],
  whisperx: ['turn', 'done', 'models', 'queue:whisperx', 'dlq:whisperx', 'alive:whisperx'],
  xtts: ['turn', 'done', 'models', 'queue:xtts', 'dlq:xtts', 'alive:xtts'],
  core: ['turn', 'done', 'queue:core', 'dlq:core', 'alive:core'],
  cali: ['turn', 'done', 'memory', 'queue:cali', 'dlq:cali', 'alive:cali'],
  seed: ['identity'],
  functions: [],
  backup: [],
};
/** Other roles' queues a role publishes jobs to: XADD (and the group at 0) only, never trim or delete. */
const PUBLISHES: Record<VaultUser, Family[]> = {
  orb: ['queue:whisperx', 'queue:xtts', 'queue:core', 'queue:cali'],
  whisperx: ['queue:core', 'queue:cali'],
  cali: ['queue:xtts'],
  xtts: [],
  core: [],
  seed: [],
  functions: [],
  backup: [],
};
/** Families read but never written. */
const READS: Record<VaultUser, Family[]> = {
  orb: ['identity'],
  cali: ['identity', 'alive:core'],
  whisperx: [],
  xtts: [],
  core: [],
  seed: [],
  functions: [],
  backup: [],
};
const PUBLISH_COMMANDS = new Set(['xadd', 'xlen', 'xgroup|create', 'fcall', 'fcall_ro']);

/** Forbidden everywhere; exemptions below are per user, each with its reason. */
const FORBIDDEN_NAMES = [
  'scan',
  'keys',
  'randomkey',
  'flushall',
  'flushdb',
  'swapdb',
  'move',
  'migrate',
  'dump',
  'restore',
  'restore-asking',
  'object|encoding',
  'sort',
  'sort_ro',
];
const EXEMPT: Record<VaultUser, Record<string, string>> = {
  orb: { info: 'ioredis ready check' },
  whisperx: { info: 'ioredis ready check' },
  xtts: { info: 'ioredis ready check' },
  core: { info: 'ioredis ready check' },
  cali: { info: 'ioredis ready check' },
  seed: { info: 'ioredis ready check' },
  functions: {
    info: 'ioredis ready check',
    'function|load': 'loads the orb library (REPLACE), its one job',
    'function|list': 'reads back which library version is loaded',
  },
  backup: { info: 'INFO persistence after BGSAVE', bgsave: 'fresh RDB', sync: 'redis-cli --rdb', replconf: 'redis-cli --rdb (rdb-only)' },
};
/** Named in issue 13: refused to every service user (derived checks cover them too; this says so by name). */
const MUST_REFUSE = [
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'script|load',
  'script|flush',
  'script|kill',
  'function|load',
  'function|flush',
  'function|delete',
  'function|restore',
  'scan',
  'randomkey',
  'keys',
  'flushall',
  'flushdb',
  'config|set',
  'config|get',
  'debug',
  'module|load',
  'acl|setuser',
  'acl|getuser',
  'acl|list',
  'shutdown',
  'monitor',
  'psync',
  'replicaof',
  'slaveof',
  'client|kill',
  'client|list',
  'xgroup|destroy',
  'xgroup|setid',
  'xgroup|delconsumer',
  'xdel',
  'publish',
  'subscribe',
];

// ---- command table from the server --------------------------------------------------------

interface Cmd {
  name: string;
  arity: number;
  flags: string[];
  categories: string[];
}

function parseCommand(raw: unknown[]): Cmd[] {
  const [name, arity, flags, , , , categories, , , subcommands] = raw as [
    string,
    number,
    string[],
    unknown,
    unknown,
    unknown,
    string[],
    unknown,
    unknown,
    unknown[][],
  ];
  if (subcommands && subcommands.length) return subcommands.flatMap(parseCommand);
  return [
    {
      name: String(name).toLowerCase(),
      arity: Number(arity),
      flags: flags.map(String),
      categories: categories.map((c) => String(c).replace(/^@/, '')),
    },
  ];
}

/** argv for `cmd` with placeholder arguments that satisfy its arity; `arg` fills every slot. */
function argv(cmd: Cmd, arg: string): string[] {
  const words = cmd.name.split('|');
  const n = Math.max(Math.abs(cmd.arity), words.length);
  return [...words, ...Array.from({ length: n - words.length }, () => arg)];
}

// ---- the checker ---------------------------------------------------------------------------

type Verdict = 'allowed' | 'refused';

/** ACL DRYRUN: the server's own permission check, with no effect. Key refusals still mean the command is allowed. */
async function dryrun(admin: Redis, user: string, args: string[]): Promise<{ command: Verdict; keys: Verdict; reply: string }> {
  const reply = String(await admin.call('ACL', 'DRYRUN', user, ...args).catch((e: Error) => e.message));
  if (reply === 'OK') return { command: 'allowed', keys: 'allowed', reply };
  if (/no permissions to run the/.test(reply)) return { command: 'refused', keys: 'refused', reply };
  if (/no permissions to access/.test(reply)) return { command: 'allowed', keys: 'refused', reply };
  throw new Error(`ACL DRYRUN ${user} ${args.join(' ')}: unexpected reply ${reply}`);
}

/** A bare RESP connection: sends a command, returns the first reply line (no client-side command handling). */
class Resp {
  private buf = '';
  private waiter?: (line: string) => void;
  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      const i = this.buf.indexOf('\r\n');
      if (i >= 0 && this.waiter) {
        const line = this.buf.slice(0, i);
        this.buf = '';
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      }
    });
  }

  static async open(port: number): Promise<Resp> {
    const sock = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return new Resp(sock);
  }

  send(args: string[]): Promise<string> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface AclReport {
  checked: number;
  allowed: number;
  refused: number;
  nopermConfirmed: number;
  keyProbes: number;
  violations: string[];
}

/** Probes that write a key, with their syntax; `K` is the key. */
const WRITE_PROBES: string[][] = [
  ['set', 'K', 'v'],
  ['del', 'K'],
  ['unlink', 'K'],
  ['expire', 'K', '1'],
  ['pexpire', 'K', '1'],
  ['append', 'K', 'v'],
  ['incr', 'K'],
  ['hset', 'K', 'f', 'v'],
  ['hdel', 'K', 'f'],
  ['sadd', 'K', 'm'],
  ['zadd', 'K', '1', 'm'],
  ['zrem', 'K', 'm'],
  ['xadd', 'K', '*', 'f', 'v'],
  ['xtrim', 'K', 'MAXLEN', '0'],
  ['xdel', 'K', '1-1'],
  ['xack', 'K', 'g', '1-1'],
  ['xgroup', 'create', 'K', 'g', '0'],
  ['xgroup', 'destroy', 'K', 'g'],
  ['xgroup', 'setid', 'K', 'g', '0'],
  ['xgroup', 'delconsumer', 'K', 'g', 'c'],
  ['xautoclaim', 'K', 'g', 'c', '0', '0'],
  ['xclaim', 'K', 'g', 'c', '0', '1-1'],
  ['fcall', 'f', '1', 'K'],
];
const READ_PROBES: string[][] = [
  ['get', 'K'],
  ['exists', 'K'],
  ['strlen', 'K'],
  ['mget', 'K'],
  ['hget', 'K', 'f'],
  ['hgetall', 'K'],
  ['hmget', 'K', 'f'],
  ['zrangebyscore', 'K', '0', '1'],
  ['xrange', 'K', '-', '+'],
  ['xread', 'STREAMS', 'K', '0'],
  ['xlen', 'K'],
  ['xinfo', 'groups', 'K'],
  ['xpending', 'K', 'g'],
  ['fcall_ro', 'f', '1', 'K'],
  // Redis 7.0's key spec of XREADGROUP is read access (7.2 makes it read-write): a read probe here.
  ['xreadgroup', 'GROUP', 'g', 'c', 'STREAMS', 'K', '>'],
];
const probeName = (p: string[]) => (p[0] === 'xgroup' || p[0] === 'xinfo' ? `${p[0]}|${p[1]}` : p[0]);

/**
 * Checks ACL user `aclUser` (loaded in the server) against the declared lists and the family
 * spec of `spec`; returns counts and every violation (empty when the rules are right).
 */
async function checkUser(
  admin: Redis,
  port: number,
  password: string,
  aclUser: string,
  spec: VaultUser,
  commands: Cmd[],
): Promise<AclReport> {
  const declared = new Set(allowedCommands(spec));
  const r: AclReport = { checked: 0, allowed: 0, refused: 0, nopermConfirmed: 0, keyProbes: 0, violations: [] };
  const conn = await Resp.open(port);
  try {
    const auth = await conn.send(['AUTH', aclUser, password]);
    if (auth !== '+OK') throw new Error(`AUTH ${aclUser}: ${auth}`);
    for (const cmd of commands) {
      r.checked++;
      // Commands flagged no-auth (AUTH, HELLO) run before authentication, so the ACL never applies.
      const noAuth = cmd.flags.includes('no_auth');
      const { command } = await dryrun(admin, aclUser, argv(cmd, 'zz:probe'));
      const expected: Verdict = declared.has(cmd.name) || noAuth ? 'allowed' : 'refused';
      if (command !== expected) r.violations.push(`${aclUser}: '${cmd.name}' is ${command}, the allow-list says ${expected}`);
      if (command === 'allowed') {
        r.allowed++;
        const forbidden =
          cmd.categories.includes('dangerous') ||
          cmd.categories.includes('admin') ||
          cmd.categories.includes('pubsub') ||
          (cmd.categories.includes('scripting') && !['fcall', 'fcall_ro'].includes(cmd.name)) ||
          FORBIDDEN_NAMES.includes(cmd.name);
        if (forbidden && !noAuth && !EXEMPT[spec][cmd.name])
          r.violations.push(`${aclUser}: '${cmd.name}' (@${cmd.categories.join(' @')}) is allowed but forbidden to every vault user`);
        continue;
      }
      r.refused++;
      // The refusal as a client sees it: sending the command really answers NOPERM (and does nothing);
      // a refused EXEC answers EXECABORT with the NOPERM reason.
      const reply = await conn.send(argv(cmd, 'zz:probe'));
      if (/^-NOPERM |^-EXECABORT .*NOPERM/.test(reply)) r.nopermConfirmed++;
      else r.violations.push(`${aclUser}: '${cmd.name}' sent for real answered ${reply.slice(0, 80)}, not NOPERM`);
    }
    for (const name of MUST_REFUSE) {
      if ((spec === 'backup' && name === 'sync') || (spec === 'functions' && name === 'function|load')) continue;
      const cmd = commands.find((c) => c.name === name);
      if (cmd && (await dryrun(admin, aclUser, argv(cmd, 'zz:probe'))).command !== 'refused')
        r.violations.push(`${aclUser}: '${name}' must be refused`);
    }
    // Key families: a write probe passes only on the role's own families (or, for another role's
    // queue it publishes to, only XADD / the group at 0); a read probe only on families it uses.
    for (const [family, keys] of Object.entries(FAMILIES) as [Family, readonly string[]][]) {
      const writes = WRITES[spec].includes(family);
      const publishes = PUBLISHES[spec].includes(family);
      const reads = writes || publishes || READS[spec].includes(family);
      let wrote = 0;
      for (const key of keys) {
        for (const probe of WRITE_PROBES) {
          r.keyProbes++;
          const v = await dryrun(
            admin,
            aclUser,
            probe.map((a) => (a === 'K' ? key : a)),
          );
          if (v.command !== 'allowed' || v.keys !== 'allowed') continue;
          wrote++;
          if (!writes && !(publishes && PUBLISH_COMMANDS.has(probeName(probe))))
            r.violations.push(`${aclUser}: may ${probe.join(' ').replace('K', key)} (family ${family} is not its to write)`);
        }
        for (const probe of READ_PROBES) {
          r.keyProbes++;
          const v = await dryrun(
            admin,
            aclUser,
            probe.map((a) => (a === 'K' ? key : a)),
          );
          if (v.command === 'allowed' && v.keys === 'allowed' && !reads)
            r.violations.push(`${aclUser}: may ${probe.join(' ').replace('K', key)} (family ${family} is not its to read)`);
        }
      }
      if ((writes || publishes) && wrote === 0) r.violations.push(`${aclUser}: writes nothing in family ${family}, which its role writes`);
    }
  } finally {
    conn.close();
  }
  return r;
}

// ---- the run ----------------------------------------------------------------------------

describe('vault ACL: every command of COMMAND against every user', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-acl-all-'));
  const passwords: Record<string, string> = {};
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  let server: RedisServerHandle;
  let admin: Redis;
  let commands: Cmd[];

  beforeAll(async () => {
    Object.assign(passwords, assembleAclFile(dir));
    // The file exactly as the pod assembles it, plus this test's own admin (the vault has none).
    writeFileSync(
      join(dir, 'users.acl'),
      `${readFileSync(join(dir, 'users.acl'), 'utf8')}user acl-admin on >${adminPassword} ~* &* +@all\n`,
    );
    // DEBUG and MODULE enabled so that the ACL, not the server's own switch, is what refuses them.
    server = await startRedisServer({
      dir,
      args: ['--aclfile', join(dir, 'users.acl'), '--enable-debug-command', 'yes', '--enable-module-command', 'yes'],
    });
    admin = new Redis({ port: server.port, host: '127.0.0.1', username: 'acl-admin', password: adminPassword, maxRetriesPerRequest: 1 });
    commands = ((await admin.call('COMMAND')) as unknown[][]).flatMap(parseCommand).sort((a, b) => a.name.localeCompare(b.name));
  });

  afterAll(async () => {
    await admin?.quit();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('each user is refused everything outside its allow-list (NOPERM), allowed exactly its list, and kept to its key families', async () => {
    expect(commands.length).toBeGreaterThan(200);
    const total: AclReport = { checked: 0, allowed: 0, refused: 0, nopermConfirmed: 0, keyProbes: 0, violations: [] };
    const lines: string[] = [];
    for (const user of VAULT_USERS) {
      const r = await checkUser(admin, server.port, passwords[user], user, user, commands);
      lines.push(
        `  ${user.padEnd(9)} allowed ${String(r.allowed).padStart(3)}  refused ${String(r.refused).padStart(3)} (NOPERM confirmed ${r.nopermConfirmed})  key probes ${r.keyProbes}  — ${VAULT_GRANTS[user].purpose}`,
      );
      for (const k of ['checked', 'allowed', 'refused', 'nopermConfirmed', 'keyProbes'] as const) total[k] += r[k];
      total.violations.push(...r.violations);
    }
    // eslint-disable-next-line no-console
    console.log(
      [
        `vault ACL: ${commands.length} commands (subcommands counted one by one) × ${VAULT_USERS.length} users = ${total.checked} checks;` +
          ` allowed ${total.allowed}, refused ${total.refused} (NOPERM confirmed by sending: ${total.nopermConfirmed}); key-family probes ${total.keyProbes}`,
        ...lines,
      ].join('\n'),
    );
    expect(total.violations).toEqual([]);
    expect(total.nopermConfirmed).toBe(total.refused);
    expect(total.checked).toBe(commands.length * VAULT_USERS.length);
  });

  test('the checker catches a wrong rule: EVAL and a queue-wide key pattern added to the gateway, one command taken away', async () => {
    // A gateway whose rules gained `+eval` and `~acp:jobs:*` in the root (DEL could then delete any queue),
    // and lost HGETALL (sessions could no longer be read).
    const wrong = `${aclRules('orb').replace(' +hgetall', '')} ~acp:jobs:* +eval`;
    await admin.call('ACL', 'SETUSER', 'orb-wrong', 'reset', 'on', '>wrong-pw', ...wrong.split(' '));
    const r = await checkUser(admin, server.port, 'wrong-pw', 'orb-wrong', 'orb', commands);
    // eslint-disable-next-line no-console
    console.log(`vault ACL, wrong rules caught: ${r.violations.length} violations, e.g.\n  ${r.violations.slice(0, 6).join('\n  ')}`);
    expect(r.violations).toEqual(
      expect.arrayContaining([
        "orb-wrong: 'eval' is allowed, the allow-list says refused",
        expect.stringMatching(/^orb-wrong: 'eval' .* is allowed but forbidden to every vault user$/),
        "orb-wrong: 'hgetall' is refused, the allow-list says allowed",
        'orb-wrong: may del acp:jobs:cali (family queue:cali is not its to write)',
        'orb-wrong: may del acp:jobs:whisperx (family queue:whisperx is not its to write)',
        'orb-wrong: may xadd acp:jobs:evil * f v (family foreign is not its to write)',
      ]),
    );
  });

  test("FCALL runs under the caller's ACL: a turn event and the next job in one call pass; a queue delete inside a function does not", async () => {
    // A stand-in for the `orb` library (its bootstrap user loads the real one): admin loads it here.
    await admin.call(
      'FUNCTION',
      'LOAD',
      'REPLACE',
      [
        '#!lua name=acltest',
        "redis.register_function('start_turn', function(keys, args) redis.call('XADD', keys[1], '*', 'type', 'turn.start'); return redis.call('XADD', keys[2], '*', 'env', args[1]) end)",
        "redis.register_function('drop_queue', function(keys) return redis.call('DEL', keys[1]) end)",
      ].join('\n'),
    );
    const call = async (user: VaultUser, ...args: string[]) => {
      const c = await Resp.open(server.port);
      try {
        await c.send(['AUTH', user, passwords[user]]);
        return await c.send(args);
      } finally {
        c.close();
      }
    };
    // The gateway: its own turn stream and the whisperx queue in one FCALL (root + publish selector).
    expect(await call('orb', 'FCALL', 'start_turn', '2', 'turn:s1:events', 'acp:jobs:whisperx', '{}')).toMatch(/^\$/);
    // CALI may queue for xtts but not for whisperx; a core queues for nobody.
    expect(await call('cali', 'FCALL', 'start_turn', '2', 'turn:s1:events', 'acp:jobs:xtts', '{}')).toMatch(/^\$/);
    expect(await call('cali', 'FCALL', 'start_turn', '2', 'turn:s1:events', 'acp:jobs:whisperx', '{}')).toMatch(/^-NOPERM/);
    expect(await call('core', 'FCALL', 'start_turn', '2', 'turn:s1:events', 'acp:jobs:cali', '{}')).toMatch(/^-NOPERM/);
    // DEL on a queue: refused inside the function even where FCALL on that key is allowed.
    expect(await call('orb', 'FCALL', 'drop_queue', '1', 'acp:jobs:whisperx')).toMatch(/NOPERM|can't access at least one of the keys/);
    expect(await admin.exists('acp:jobs:whisperx')).toBe(1);
    // And nobody but the bootstrap user (`functions`) loads code.
    const lib = "#!lua name=x\nredis.register_function('f', function() return 1 end)";
    for (const user of VAULT_USERS.filter((u) => u !== 'functions')) expect(await call(user, 'FUNCTION', 'LOAD', lib)).toMatch(/^-NOPERM/);
    expect(await call('functions', 'FUNCTION', 'LOAD', lib)).toMatch(/^\$/);
    expect(await call('functions', 'FUNCTION', 'DELETE', 'x')).toMatch(/^-NOPERM/);
    await admin.call('FUNCTION', 'DELETE', 'x');
    await admin.call('FUNCTION', 'DELETE', 'acltest');
  });

  test('no user has a Pub/Sub channel, and nobody can act as the default user', async () => {
    for (const user of VAULT_USERS) {
      const info = (await admin.call('ACL', 'GETUSER', user)) as unknown[];
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < info.length; i += 2) f[String(info[i])] = info[i + 1];
      expect(f.channels).toBe('');
    }
    const def = (await admin.call('ACL', 'GETUSER', 'default')) as unknown[];
    expect(def[def.indexOf('flags') + 1] as string[]).toContain('off');
    // Its +@write (for the AOF replay, see DEFAULT_USER_RULES) is out of every client's reach.
    const anon = await Resp.open(server.port);
    try {
      expect(await anon.send(['SET', 'identity:seed', 'x'])).toMatch(/^-NOAUTH/);
      expect(await anon.send(['FLUSHALL'])).toMatch(/^-NOAUTH/);
      expect(await anon.send(['AUTH', 'default', ''])).toMatch(/^-WRONGPASS/);
      expect(await anon.send(['AUTH', 'default', 'anything'])).toMatch(/^-WRONGPASS/);
    } finally {
      anon.close();
    }
  });
});

describe('the backup user is full-read and isolated', () => {
  test.each(['dev', 'prod'])(
    '%s: vault-backup takes no connection and reaches only DNS, the vault (and in prod its Sentinels and the object store)',
    (env) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { parseAllDocuments } = require('yaml') as typeof import('yaml');
      const docs = parseAllDocuments(readFileSync(join(__dirname, '..', '..', 'dist', env, '02-network.k8s.yaml'), 'utf8')).map((d) =>
        d.toJS(),
      );
      const np = docs.find((d) => d?.kind === 'NetworkPolicy' && d.metadata.name === 'vault-backup');
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(np.spec.ingress ?? []).toEqual([]);
      const ports = (np.spec.egress as Array<{ ports: Array<{ port: number }> }>).flatMap((e) => e.ports.map((p) => p.port)).sort();
      // Prod's HA vault: the snapshot step asks a Sentinel (26379) which node is the primary, and the
      // upload step reaches the off-cluster object store (443).
      expect([...new Set(ports)].sort((x, y) => x - y)).toEqual(
        (env === 'prod' ? [53, 443, 6379, 26379] : [53, 6379]).sort((x, y) => x - y),
      );
    },
  );
});
