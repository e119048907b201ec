/**
 * capacity: what one text turn and one audio turn cost the vault, and how many turns per second
 * one Redis primary can carry (docs/capacity.md).
 *
 * The dev stack (scripts/dev.ts: its own redis-server with the manifests' ACL users, one orb-core,
 * five cores, CALI, whisperx and xtts on CPU with the tiny models) runs N text turns and N audio
 * turns, one at a time. Each phase starts with CONFIG RESETSTAT and ends with one INFO read:
 * - commandstats: every command Redis executed, by name, including the ones the `orb` FUNCTION
 *   library runs inside an FCALL;
 * - MONITOR (a separate pass, since feeding a monitor costs the server CPU): the commands clients
 *   sent, FCALL split by function, without the commands run inside functions;
 * - total_net_input/output_bytes, the main thread's CPU time (used_cpu_*_main_thread) and used_memory.
 * An idle window of the same stack first measures what runs with no turn at all (workers' blocking
 * reads, heartbeats, the deadline sweeper): its rate times a phase's length is subtracted.
 * Then redis-benchmark, on a fresh redis-server with the `orb` library, measures this machine's
 * rate for each command class a turn sends (XADD, XREADGROUP, FCALL orb_append, HSET, HGETALL,
 * XRANGE, PING). Turns/s per primary, two ways: 1 / main-thread CPU per turn (measured), and
 * 1 / sum(client commands per turn / benchmark rate of their class) (estimated).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { figure, NotAvailable, type Benchmark, type Figure } from './harness/result';
import { subject } from './harness/subject';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServerStats {
  /** Executed commands by name (`xadd`, `client|setname`, …), FCALL-internal ones included. */
  readonly calls: Record<string, number>;
  /** Microseconds spent executing, by command (FCALL's includes its inner commands). */
  readonly usec: Record<string, number>;
  readonly inBytes: number;
  readonly outBytes: number;
  /** Main-thread CPU seconds (user + sys). */
  readonly cpuMain: number;
  readonly usedMemory: number;
}

/** Parses `INFO commandstats` + `INFO stats` + `INFO cpu` + `INFO memory` text. */
export function parseInfo(text: string): ServerStats {
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  const num = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(text)?.[1] ?? NaN);
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1]] = Number(m[2]);
    usec[m[1]] = Number(m[3]);
  }
  return {
    calls,
    usec,
    inBytes: num('total_net_input_bytes'),
    outBytes: num('total_net_output_bytes'),
    cpuMain: num('used_cpu_user_main_thread') + num('used_cpu_sys_main_thread'),
    usedMemory: num('used_memory'),
  };
}

interface Window {
  stats: ServerStats;
  cpu: number;
  ms: number;
  mem: number;
}

/** Per-turn figures of a phase, net of the idle rate over the phase's length. */
export function perTurn(phase: Window, idle: Window, turns: number) {
  const scale = phase.ms / idle.ms;
  const net = (a: number, b: number) => (a - b * scale) / turns;
  const names = new Set([...Object.keys(phase.stats.calls), ...Object.keys(idle.stats.calls)]);
  const calls: Record<string, number> = {};
  for (const n of names) {
    const v = net(phase.stats.calls[n] ?? 0, idle.stats.calls[n] ?? 0);
    if (Math.abs(v) >= 0.05) calls[n] = Number(v.toFixed(2));
  }
  return {
    calls,
    inBytes: net(phase.stats.inBytes, idle.stats.inBytes),
    outBytes: net(phase.stats.outBytes, idle.stats.outBytes),
    cpuMs: net(phase.cpu, idle.cpu) * 1000,
    memoryBytes: net(phase.mem, idle.mem),
  };
}

/** Command class of a client command, for the redis-benchmark rate it is charged at. */
export function benchClass(cmd: string): string {
  const c = cmd.toLowerCase();
  if (c.startsWith('fcall')) return 'fcall';
  if (c === 'xadd') return 'xadd';
  if (c === 'xreadgroup' || c === 'xread' || c === 'xautoclaim' || c === 'xclaim') return 'xreadgroup';
  if (c === 'hgetall') return 'hgetall';
  if (c === 'xrange' || c === 'xrevrange') return 'xrange';
  if (c === 'ping' || c === 'info' || c.startsWith('client')) return 'ping';
  return 'hset'; // the other single-key O(1) reads and writes: HSET/HGET/HMGET/SET/GET/INCR/EXPIRE/XACK/ZADD/…
}

async function redisBenchmark(port: number, n: number, log: (m: string) => void): Promise<Record<string, number>> {
  const bench = async (name: string, args: string[], count = n) => {
    const { stdout } = await run(
      'redis-benchmark',
      ['-p', String(port), '-c', '50', '-n', String(count), '-r', '100000', '--csv', ...args],
      { maxBuffer: 1 << 20 },
    );
    // The first quoted number after the header: the test name (the command) may hold quotes itself.
    const rps = Number(/"([0-9]+(?:\.[0-9]+)?)","[0-9.]+","[0-9.]+"/.exec(stdout.split('\n').slice(1).join('\n'))?.[1]);
    if (!Number.isFinite(rps) || rps <= 0) throw new Error(`redis-benchmark ${name}: no rate in ${JSON.stringify(stdout.slice(0, 200))}`);
    log(`redis-benchmark ${name}: ${rps.toFixed(0)} ops/s`);
    return rps;
  };
  const admin = new Redis({ port, lazyConnect: true });
  await admin.connect();
  try {
    const { loadOrbFunctions } = await import('../services/acp/functions');
    await loadOrbFunctions(admin);
    await admin.call('XGROUP', 'CREATE', 'bench:q', 'g', '$', 'MKSTREAM');
    const rates: Record<string, number> = {};
    rates.ping = await bench('PING', ['PING']);
    // A session's event append as orb-core, the workers and CALI send it.
    // (One seq key: redis-benchmark draws each __rand_int__ on its own, and the entry id is the seq.)
    rates.fcall = await bench('FCALL orb_append', [
      'FCALL',
      'orb_append',
      '2',
      'turn:bench:seq',
      'turn:__rand_int__:events',
      '1000',
      '3600',
      'transcript',
      't1',
      '{"text":"what time is it in the orb"}',
      '1700000000000',
      '',
      '0',
      '',
    ]);
    // A job onto a queue, then the consumers' reads of exactly those entries.
    rates.xadd = await bench('XADD', ['XADD', 'bench:q', '*', 'job', '{"turn":"t1","session":"s1","text":"what time is it in the orb"}']);
    rates.xreadgroup = await bench('XREADGROUP', ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', 'bench:q', '>']);
    rates.hset = await bench('HSET', ['HSET', 'session:__rand_int__', 'owner', 'dev', 'created', '1700000000000']);
    rates.hgetall = await bench('HGETALL', ['HGETALL', 'session:__rand_int__']);
    // A turn's events read back (about 10 entries).
    for (let i = 0; i < 10; i++)
      await admin.xadd(
        'bench:events',
        '*',
        'type',
        'verdict',
        'turn',
        't1',
        'data',
        '{"label":"greeting","score":0.9}',
        'ts',
        '1700000000000',
        'job',
        '',
      );
    rates.xrange = await bench('XRANGE (10 entries)', ['XRANGE', 'bench:events', '-', '+']);
    return rates;
  } finally {
    admin.disconnect();
  }
}

/** Vault key family of a key (the dev stack's vault holds only this benchmark's keys). */
export function family(key: string): string {
  if (/^session:index:/.test(key)) return 'session:index:{keyId}';
  if (/^session:/.test(key)) return 'session:{sid}';
  if (/^turn:deadlines$/.test(key)) return 'turn:deadlines';
  if (/^turn:[^:]+:events$/.test(key)) return 'turn:{sid}:events';
  if (/^turn:[^:]+:seq$/.test(key)) return 'turn:{sid}:seq';
  if (/^turn:[^:]+:[^:]+:audio$/.test(key)) return 'turn:{sid}:{turn}:audio';
  if (/^turn:[^:]+:[^:]+:abandoned$/.test(key)) return 'turn:{sid}:{turn}:abandoned';
  if (/^turn:[^:]+:[^:]+$/.test(key)) return 'turn:{sid}:{turn}';
  if (/^memory:/.test(key)) return 'memory:{sid}';
  if (/^acp:alive:/.test(key)) return 'acp:alive:*';
  if (/^acp:done:/.test(key)) return 'acp:done:{jobId}';
  const m = /^(acp:jobs|acp:dlq|orb:[a-z]+|identity)(:|$)/.exec(key);
  return m ? `${m[1]}:*` : key;
}

/**
 * MEMORY USAGE of every key after the run, by family: per-session families split by the phase
 * whose sessions they belong to (bytes per turn of that kind), the rest in total, with their TTLs.
 */
async function retainedBytes(admin: Redis, sids: Record<'text' | 'audio', string[]>) {
  const byFamily: Record<string, { keys: number; bytes: number; text: number; audio: number; ttlS: number }> = {};
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const bytes = Number((await admin.memory('USAGE', key, 'SAMPLES', 0)) ?? 0);
      const ttl = await admin.ttl(key);
      const f = (byFamily[family(key)] ??= { keys: 0, bytes: 0, text: 0, audio: 0, ttlS: -1 });
      f.keys += 1;
      f.bytes += bytes;
      f.ttlS = Math.max(f.ttlS, ttl);
      if (sids.text.some((s) => key.includes(s))) f.text += bytes;
      if (sids.audio.some((s) => key.includes(s))) f.audio += bytes;
    }
  } while (cursor !== '0');
  return byFamily;
}

export const capacity: Benchmark = {
  name: 'capacity',
  title: 'vault cost of a text and an audio turn (commands, bytes, CPU) and turns/s per Redis primary',
  label: 'absolute capacity figures on a shared machine: see docs/capacity.md for how they are derived',
  async run({ quick, root, log }) {
    const dev = await subject('scripts/dev.ts (startDevStack)', () => import('../scripts/dev'));
    const { startRedisServer } = await subject('tools/redis/redis-server.ts', () => import('../tools/redis/redis-server'));
    try {
      await run('redis-benchmark', ['--version']);
    } catch {
      throw new NotAvailable('redis-benchmark is not installed');
    }
    const turns = quick ? 4 : 20;
    const idleMs = quick ? 4000 : 10_000;
    const tail: string[] = [];
    const stack = await dev
      .startDevStack({
        redisUrl: '',
        orbPorts: [0],
        speech: true,
        web: false,
        keyPrefix: '',
        env: { LOG_LEVEL: 'warn', ORB_MAX_EVENT_LOOP_DELAY_MS: '0', ORB_TURN_DEADLINE_MS: '30000' },
        log: (name, line) => {
          tail.push(`${name} | ${line}`);
          if (tail.length > 200) tail.shift();
        },
        readyTimeoutMs: 240_000,
      })
      .catch((err: Error) => {
        throw new Error(`dev stack did not start: ${err.message.split('\n').slice(0, 6).join(' / ')}`);
      });
    const admin = new Redis(stack.vaultUrl);
    try {
      const url = stack.orbUrls[0];
      const auth = { authorization: `Bearer ${stack.apiKey}` };
      const wav = readFileSync(join(root, 'test/fixtures/speech-16k.wav'));
      const newSession = async () => {
        const r = await fetch(`${url}/v1/sessions`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: '{}',
        });
        return ((await r.json()) as { id: string }).id;
      };
      let speak = true;
      const turn = async (kind: 'text' | 'audio', sid: string) => {
        const res =
          kind === 'text'
            ? await fetch(`${url}/v1/turns`, {
                method: 'POST',
                headers: { ...auth, 'content-type': 'application/json' },
                body: JSON.stringify({ session: sid, text: 'what time is it in the orb', speak: false }),
              })
            : await fetch(`${url}/v1/turns?session=${sid}&speak=${speak}`, {
                method: 'POST',
                headers: { ...auth, 'content-type': 'audio/wav' },
                body: wav,
              });
        const body = (await res.json()) as { outcome?: string; events?: Array<{ type: string }>; message?: string };
        if (res.status !== 200 || body.outcome !== 'ok')
          throw new Error(`${kind} turn: HTTP ${res.status} outcome ${body.outcome} ${body.message ?? ''}`);
        return body.events?.length ?? 0;
      };
      // Warm-up: lazy paths in every process, and whether the spoken reply works here.
      const warm = await newSession();
      await turn('text', warm);
      await turn('audio', warm).catch(async (err: Error) => {
        log(`spoken audio turn failed (${err.message}); audio turns with a text reply`);
        speak = false;
        await turn('audio', warm);
      });
      // Sessions made beforehand: a phase counts turns only. Five turns per session.
      const sessions = async () => Promise.all(Array.from({ length: Math.ceil(turns / 5) }, newSession));

      const info = async () => parseInfo(String(await admin.info('everything')));
      const window = async (body: () => Promise<unknown>): Promise<Window> => {
        await admin.config('RESETSTAT');
        const before = await info();
        const t0 = Date.now();
        await body();
        const ms = Date.now() - t0;
        const after = await info();
        return { stats: after, cpu: after.cpuMain - before.cpuMain, ms, mem: after.usedMemory - before.usedMemory };
      };
      const phaseSids: Record<'text' | 'audio', string[]> = { text: [], audio: [] };
      const phase = async (kind: 'text' | 'audio') => {
        const sids = await sessions();
        phaseSids[kind] = sids;
        const events: number[] = [];
        const w = await window(async () => {
          for (let i = 0; i < turns; i++) events.push(await turn(kind, sids[Math.floor(i / 5)]));
        });
        return { w, events: events.reduce((a, b) => a + b, 0) / turns };
      };

      // Pass 1, under MONITOR: what clients send (top level), FCALL by function.
      const monitor = await admin.monitor();
      let sent: Record<string, number> = {};
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (source === 'lua' || !args?.length) return;
        const c = args[0].toLowerCase();
        const key =
          c === 'fcall' || c === 'fcall_ro'
            ? `${c} ${args[1]}`
            : c === 'client' || c === 'config' || c === 'xgroup'
              ? `${c}|${String(args[1]).toLowerCase()}`
              : c;
        sent[key] = (sent[key] ?? 0) + 1;
      });
      const count = async (body: () => Promise<unknown>) => {
        sent = {};
        const t0 = Date.now();
        await body();
        return { sent: { ...sent }, ms: Date.now() - t0 };
      };
      const idleSent = await count(() => sleep(idleMs));
      const textSids = await sessions();
      const textSent = await count(async () => {
        for (let i = 0; i < turns; i++) await turn('text', textSids[Math.floor(i / 5)]);
      });
      const audioSids = await sessions();
      const audioSent = await count(async () => {
        for (let i = 0; i < turns; i++) await turn('audio', audioSids[Math.floor(i / 5)]);
      });
      monitor.disconnect();
      const netSent = (p: { sent: Record<string, number>; ms: number }) => {
        const out: Record<string, number> = {};
        for (const k of new Set([...Object.keys(p.sent), ...Object.keys(idleSent.sent)])) {
          const v = ((p.sent[k] ?? 0) - (idleSent.sent[k] ?? 0) * (p.ms / idleSent.ms)) / turns;
          if (Math.abs(v) >= 0.05) out[k] = Number(v.toFixed(2));
        }
        return out;
      };
      await sleep(500);

      // Pass 2, no monitor: executed commands, bytes, CPU, memory.
      const idle = await window(() => sleep(idleMs));
      const text = await phase('text');
      const audio = await phase('audio');
      const textTurn = { ...perTurn(text.w, idle, turns), sent: netSent(textSent), events: text.events, turnMs: text.w.ms / turns };
      const audioTurn = { ...perTurn(audio.w, idle, turns), sent: netSent(audioSent), events: audio.events, turnMs: audio.w.ms / turns };
      const idleCpuShare = idle.cpu / (idle.ms / 1000);
      const retained = await retainedBytes(admin, phaseSids);
      const allTurns = 2 + 4 * turns; // warm-up, and two passes of each kind
      const idleCmdsPerS = Object.values(idle.stats.calls).reduce((a, b) => a + b, 0) / (idle.ms / 1000);

      // redis-benchmark on a fresh server on this machine (no ACL, no persistence: the command cost alone).
      const server = await startRedisServer({ args: ['--save', '', '--appendonly', 'no'] });
      let rates: Record<string, number>;
      try {
        rates = await redisBenchmark(server.port, quick ? 20_000 : 100_000, log);
      } finally {
        await server.stop();
      }
      const estimate = (sentPerTurn: Record<string, number>) =>
        1 /
        Object.entries(sentPerTurn)
          .filter(([, n]) => n > 0)
          .reduce((s, [c, n]) => s + n / rates[benchClass(c.split(' ')[0])], 0);
      const total = (r: Record<string, number>) =>
        Object.values(r)
          .filter((v) => v > 0)
          .reduce((a, b) => a + b, 0);

      const figures: Figure[] = [];
      for (const [kind, t] of [
        ['text', textTurn],
        ['audio', audioTurn],
      ] as const) {
        figures.push(
          figure({
            metric: `${kind} turn: commands clients send per turn`,
            unit: 'commands',
            better: 'lower',
            subjectLabel: `${kind} turn`,
            subject: total(t.sent),
            baselineLabel: 'text turn',
            baseline: total(textTurn.sent),
          }),
        );
        figures.push(
          figure({
            metric: `${kind} turn: commands Redis executes per turn (FCALL inner included)`,
            unit: 'commands',
            better: 'lower',
            subjectLabel: `${kind} turn`,
            subject: total(t.calls),
            baselineLabel: 'text turn',
            baseline: total(textTurn.calls),
          }),
        );
        figures.push(
          figure({
            metric: `${kind} turn: bytes in + out per turn`,
            unit: 'bytes',
            better: 'lower',
            subjectLabel: `${kind} turn`,
            subject: t.inBytes + t.outBytes,
            baselineLabel: 'text turn',
            baseline: textTurn.inBytes + textTurn.outBytes,
          }),
        );
        figures.push(
          figure({
            metric: `${kind} turn: Redis main-thread CPU per turn`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: `${kind} turn`,
            subject: t.cpuMs,
            baselineLabel: 'text turn',
            baseline: textTurn.cpuMs,
          }),
        );
        figures.push(
          figure({
            metric: `${kind} turns/s per primary: 1 / CPU per turn (measured) vs from redis-benchmark rates (estimated)`,
            unit: 'turns/s',
            better: 'higher',
            subjectLabel: 'from CPU',
            subject: 1000 / t.cpuMs,
            baselineLabel: 'from redis-benchmark',
            baseline: estimate(t.sent),
          }),
        );
      }
      log(`text turn: ${JSON.stringify(textTurn)}`);
      log(`audio turn: ${JSON.stringify(audioTurn)}`);
      log(`retained after ${allTurns} turns: ${JSON.stringify(retained)}`);
      log(`idle: ${(idleCpuShare * 100).toFixed(2)} % main-thread CPU, ${idleCmdsPerS.toFixed(1)} commands/s`);
      return {
        figures,
        details: {
          turns,
          idleMs,
          speak,
          text: textTurn,
          retained,
          allTurns,
          audio: audioTurn,
          rates,
          idle: { cpuShare: idleCpuShare, commandsPerS: idleCmdsPerS, calls: idle.stats.calls, sent: idleSent.sent, ms: idle.ms },
          turnsPerSFromCpu: { text: 1000 / textTurn.cpuMs, audio: 1000 / audioTurn.cpuMs },
          turnsPerSFromBenchmark: { text: estimate(textTurn.sent), audio: estimate(audioTurn.sent) },
          speechModels: existsSync(join(root, 'tools/tiny-models/cli.ts')),
        },
      };
    } catch (err) {
      (err as Error).message += `\n${tail.slice(-20).join('\n')}`;
      throw err;
    } finally {
      admin.disconnect();
      await stack.stop();
    }
  },
};
