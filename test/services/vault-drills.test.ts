/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * Failover drills on real processes (issue #14): three `redis-server` (AOF, min-replicas-to-write 1,
 * the rendered per-service ACL users) and three `redis-server --sentinel` on loopback, and the real
 * services connected through the Sentinels as their own ACL users: two gateway apps listening on
 * real sockets (delivery after replication on, as it is by default with Sentinels), the five
 * cores (the committed ONNX models), CALI, and the speech workers (whisperx and xtts with the tiny
 * Whisper and Piper models the test support builds), each as its own ACL user. The gateways run the
 * real Silero VAD.
 *
 * Under a steady, bounded load of WebSocket turns (each client a session, reconnecting with
 * `last_seq` when its socket drops) each drill injects one fault. Most clients run text turns; the
 * audio clients run spoken turns the way a microphone client does: the recorded fixture streamed
 * as PCM frames between stretches of silence, the utterance committed by the gateway's VAD, sent to
 * whisperx, and the reply spoken by xtts (`speak=true`: `audio` events in the same stream):
 *  - SIGKILL of the primary (it comes back as a replica of the promoted one);
 *  - SIGSTOP of the primary past down-after-milliseconds, then SIGCONT: it must come back as a
 *    replica, and only one node may accept writes (no split brain);
 *  - restart of one replica;
 *  - restart of one Sentinel.
 * Afterwards every event each client received is compared with the vault's streams: an event a
 * client saw that the vault no longer holds (or holds differently) is an acknowledged event lost;
 * a seq received twice is a duplicate (audio sessions' events, the spoken reply's included, are
 * compared the same way). Both must be 0 for SIGKILL and SIGSTOP. One table line per drill is
 * printed (text and audio turns ok / failed / timed out, time until both gateways answer /readyz 200,
 * whether every process served a full turn afterwards without being restarted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import { loadOrbFunctions, vaultKeys } from '../../services/acp';
import { connectVault } from '../../services/acp/vault';
import { loadEnv } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { buildApp } from '../../services/orb/app';
import { parseIdentity, writeIdentity } from '../../services/seed/identity';
import { pcmFromWav } from '../../services/orb/audio';
import { asrRole } from '../../services/workers/asr/role';
import { ttsRole } from '../../services/workers/tts/role';
import { caliRole } from '../../services/workers/cali/role';
import { coreRole } from '../../services/workers/core/role';
import { WorkerRuntime } from '../../services/workers/runtime';
import { VAULT_USERS, type VaultUser } from '../../infra/vault-acl';
import { assembleAclFile } from '../support/acl-file';
import { freePort } from '../../tools/redis/redis-server';
import { hasTool } from '../support/system-tools';
import { writeTinyWhisper } from '../../tools/tiny-models/whisper';
import { writeTinyPiperVoices } from '../../tools/tiny-models/piper';
import { REPO, waitUntil, workerConfig } from './acp/helpers';
import { API_KEYS_ENV, auth, http, listen } from './orb/support';

jest.setTimeout(600_000);

const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 4000;
const CLIENTS = 4;
const AUDIO_CLIENTS = 2;
const TURN_WAIT_MS = 20_000;
/** How long from its first frame an utterance may take to be committed by the gateway's VAD. */
const COMMIT_WAIT_MS = 10_000;
const SPEECH_WAV = readFileSync(join(REPO, 'test', 'fixtures', 'speech-16k.wav'));
/** One spoken turn's audio: 0.4 s of silence, the recorded sentence, 1.2 s of silence (the VAD ends it). */
const UTTERANCE = Buffer.concat([Buffer.alloc(12_800), pcmFromWav(SPEECH_WAV), Buffer.alloc(38_400)]);
const FRAME_BYTES = 3200; // 100 ms of PCM16 16 kHz mono
const DRILL_PW = `drill-${Math.random().toString(36).slice(2)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ok = hasTool('redis-server', 'redis-server', 'vault failover drills');
const run = ok ? describe : describe.skip;

interface Proc {
  port: number;
  dir: string;
  proc: ChildProcess | null;
  log: string;
}

type Tally = { ok: number; failed: number; timedOut: number };

/** One WebSocket client: a session of sequential text or spoken turns that records every event it is shown. */
class Driver {
  sid = '';
  lastSeq = 0;
  readonly seen = new Map<number, { type: string; turn: string }>();
  duplicates = 0;
  reconnects = 0;
  /** input_audio.committed seen (one per spoken turn unless the VAD splits an utterance). */
  commits = 0;
  /** Why turns did not end ok (error code or turn.end outcome), for the log. */
  readonly why = new Map<string, number>();
  turns: Tally = { ok: 0, failed: 0, timedOut: 0 };
  /** The session may hold an utterance a broken turn left open: cleared before the next one. */
  private openUtterance = false;
  private ws: WebSocket | null = null;
  private waiters: Array<(m: Record<string, unknown>) => void> = [];
  private readonly endData = new Map<string, unknown>();
  running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: () => string,
    readonly name: string,
    readonly kind: 'text' | 'audio' = 'text',
  ) {}

  start(): void {
    this.running = true;
    this.turns = { ok: 0, failed: 0, timedOut: 0 };
    this.commits = 0;
    this.why.clear();
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }

  /** A fresh session for the next drill (each drill compares its own sessions). */
  reset(): void {
    this.close();
    this.sid = '';
    this.lastSeq = 0;
    this.seen.clear();
    this.endData.clear();
    this.duplicates = 0;
    this.openUtterance = false;
  }

  private on(m: Record<string, unknown>): void {
    if (typeof m.seq === 'number') {
      if (this.seen.has(m.seq)) this.duplicates += 1;
      else this.seen.set(m.seq, { type: String(m.type), turn: String(m.turn ?? '') });
      this.lastSeq = Math.max(this.lastSeq, m.seq);
      if (m.type === 'turn.end') this.endData.set(String(m.turn), m.data);
    } else if (m.type === 'turn.end') {
      // A commit refused before anything was written: the gateway ends that turn on the socket only.
      this.endData.set(String(m.turn), m.data);
    }
    if (m.type === 'input_audio.committed') this.commits += 1;
    for (const w of [...this.waiters]) w(m);
  }

  private next(pred: (m: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown> | null> {
    return new Promise((resolve) => {
      const ws = this.ws;
      const finish = (v: Record<string, unknown> | null) => {
        clearTimeout(t);
        this.waiters = this.waiters.filter((x) => x !== w);
        ws?.off('close', onClose);
        resolve(v);
      };
      const w = (m: Record<string, unknown>) => {
        if (pred(m)) finish(m);
      };
      const onClose = () => finish(null);
      const t = setTimeout(() => finish(null), timeoutMs);
      this.waiters.push(w);
      ws?.once('close', onClose);
    });
  }

  private async connect(): Promise<boolean> {
    const query = [
      ...(this.sid ? [`session=${this.sid}`, `last_seq=${this.lastSeq}`] : []),
      ...(this.kind === 'audio' ? ['speak=true'] : []),
    ];
    const path = `/v1/session${query.length ? `?${query.join('&')}` : ''}`;
    const ws = new WebSocket(`ws://${this.host()}${path}`, { headers: auth('alice') });
    ws.on('error', () => undefined);
    ws.on('message', (data, bin) => {
      if (!bin) this.on(JSON.parse(data.toString()));
    });
    this.ws = ws;
    const ready = await this.next((m) => m.type === 'session.ready', 10_000);
    if (!ready) {
      ws.terminate();
      this.ws = null;
      return false;
    }
    this.sid = String(ready.session);
    if (ready.open_utterance) this.openUtterance = true;
    return true;
  }

  private async loop(): Promise<void> {
    let n = 0;
    while (this.running) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        if (this.ws) this.reconnects += 1;
        if (!(await this.connect())) {
          await sleep(200);
          continue;
        }
      }
      let turn: string | null;
      if (this.kind === 'audio') turn = await this.sendUtterance();
      else {
        const accepted = this.next((m) => m.type === 'turn.accepted' || m.type === 'error', 10_000);
        this.ws!.send(JSON.stringify({ type: 'text', text: n++ % 2 ? 'my name is Ana' : 'hello there' }));
        const a = await accepted;
        turn = !a || a.type === 'error' ? null : String(a.turn);
        if (!turn) this.note(a ? `accept ${String(a.code)}` : 'accept: none');
      }
      if (!turn) {
        this.turns.failed += 1;
        await sleep(200);
        continue;
      }
      const end = await this.waitEnd(turn);
      const outcome = end?.data as { outcome?: string; code?: string } | undefined;
      if (!end) {
        this.turns.timedOut += 1;
        this.note('no turn.end');
      } else if (outcome?.outcome === 'ok') this.turns.ok += 1;
      else {
        this.turns.failed += 1;
        this.note(`end ${String(outcome?.outcome)} ${String(outcome?.code ?? '')}`);
      }
      await sleep(50); // a steady load, not a flood
    }
  }

  private note(why: string): void {
    this.why.set(why, (this.why.get(why) ?? 0) + 1);
  }

  /**
   * Streams one utterance in 100 ms frames and returns the turn the VAD committed it as, or null
   * (socket lost mid-utterance, the clear refused, no commit within COMMIT_WAIT_MS).
   */
  private async sendUtterance(): Promise<string | null> {
    if (this.openUtterance) {
      const cleared = this.next((m) => m.type === 'input_audio.cleared' || m.type === 'error', 10_000);
      this.ws!.send(JSON.stringify({ type: 'input_audio.clear' }));
      const c = await cleared;
      if (!c || c.type === 'error') {
        this.note(c ? `clear ${String(c.code)}` : 'clear: none');
        return null;
      }
      this.openUtterance = false;
    }
    // Bounded: streaming takes well under a second here, the gateway paces and endpoints after it.
    const committed = this.next((m) => m.type === 'input_audio.committed', COMMIT_WAIT_MS);
    const ws = this.ws!;
    for (let i = 0; i < UTTERANCE.length; i += FRAME_BYTES) {
      if (ws.readyState !== WebSocket.OPEN) break;
      ws.send(UTTERANCE.subarray(i, Math.min(i + FRAME_BYTES, UTTERANCE.length)));
      if ((i / FRAME_BYTES) % 10 === 9) await sleep(10);
    }
    const c = await committed;
    if (!c) {
      this.openUtterance = true;
      this.note('no commit');
      return null;
    }
    return String(c.turn);
  }

  /** turn.end of `turn`, across reconnects (the resume replays what was missed), bounded. */
  private async waitEnd(turn: string): Promise<Record<string, unknown> | null> {
    const deadline = Date.now() + TURN_WAIT_MS;
    const isEnd = (m: Record<string, unknown>) => m.type === 'turn.end' && m.turn === turn;
    for (;;) {
      if (this.endData.has(turn)) return { data: this.endData.get(turn) };
      const left = deadline - Date.now();
      if (left <= 0) return null;
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        this.reconnects += 1;
        if (!(await this.connect())) await sleep(200);
        continue;
      }
      const m = await this.next(isEnd, left);
      if (m) return m;
    }
  }
}

run('vault failover drills (3 redis + 3 Sentinels, real services through Sentinel)', () => {
  const root = mkdtempSync(join(tmpdir(), 'vault-drills-'));
  const nodes: Proc[] = [];
  const sentinels: Proc[] = [];
  let passwords = {} as Record<VaultUser, string>;
  const workers: WorkerRuntime[] = [];
  const gateways: FastifyInstance[] = [];
  const hosts: string[] = [];
  const drivers: Driver[] = [];
  const rows: string[] = [];
  const vaultClients: Redis[] = [];
  const serviceVault = (user: VaultUser, name: string) => {
    const c = connectVault(loadEnv(VAULT_ENV, vaultCfg(user)), { connectionName: name });
    vaultClients.push(c);
    return c;
  };

  const admin = (port: number) => {
    const c = new Redis({
      host: '127.0.0.1',
      port,
      username: 'drill',
      password: DRILL_PW,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    c.on('error', () => undefined);
    return c;
  };
  const ask = async (port: number, ...cmd: (string | number)[]): Promise<unknown> => {
    const c = admin(port);
    try {
      await c.connect();
      return await c.call(String(cmd[0]), ...cmd.slice(1).map(String));
    } finally {
      c.disconnect();
    }
  };
  /** One command to a Sentinel on a connection of its own (Sentinels run without the drill's ACL user). */
  const askSentinel = async (port: number, ...cmd: string[]): Promise<unknown> => {
    const c = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await c.call(cmd[0], ...cmd.slice(1));
    } finally {
      c.disconnect();
    }
  };
  const role = async (i: number) => ((await ask(nodes[i].port, 'ROLE')) as unknown[])[0] as string;
  const linkUp = async (i: number) => /master_link_status:up/.test(String(await ask(nodes[i].port, 'INFO', 'replication')));
  const primaryPort = async (): Promise<number> => {
    for (const s of sentinels) {
      if (!s.proc) continue;
      try {
        return Number(((await askSentinel(s.port, 'SENTINEL', 'get-master-addr-by-name', 'vault')) as string[])[1]);
      } catch {
        /* next Sentinel */
      }
    }
    throw new Error('no Sentinel answered');
  };

  const spawnLogged = (p: Proc, args: string[]) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.log = '';
    child.stdout?.on('data', (d) => {
      p.log = (p.log + String(d)).slice(-20_000);
    });
    child.stderr?.on('data', (d) => {
      p.log = (p.log + String(d)).slice(-20_000);
    });
    child.once('exit', () => {
      if (p.proc === child) p.proc = null;
    });
    p.proc = child;
  };
  const startNode = async (i: number, replicaOfPort?: number) => {
    const n = nodes[i];
    spawnLogged(n, [
      '--port',
      String(n.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      n.dir,
      '--aclfile',
      join(root, 'users.acl'),
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--protected-mode',
      'no',
      '--loglevel',
      'notice',
      '--min-replicas-to-write',
      '1',
      '--min-replicas-max-lag',
      '5',
      '--repl-diskless-sync',
      'yes',
      '--repl-diskless-sync-delay',
      '0',
      '--masteruser',
      'drill',
      '--masterauth',
      DRILL_PW,
      ...(replicaOfPort ? ['--replicaof', '127.0.0.1', String(replicaOfPort)] : []),
    ]);
    await waitUntil(`redis ${i} answers`, async () => (await ask(n.port, 'PING')) === 'PONG', 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${n.log}`);
    });
    if (replicaOfPort) await waitUntil(`redis ${i} in sync`, () => linkUp(i), 30_000);
  };
  const startSentinel = async (i: number) => {
    const s = sentinels[i];
    spawnLogged(s, [join(s.dir, 'sentinel.conf'), '--sentinel']);
    await waitUntil(
      `sentinel ${i} answers`,
      async () => {
        return (await askSentinel(s.port, 'PING')) === 'PONG';
      },
      20_000,
    );
  };
  const vaultCfg = (user: VaultUser) => ({
    REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    REDIS_SENTINEL_MASTER: 'vault',
    REDIS_USERNAME: user,
    REDIS_PASSWORD: passwords[user],
  });
  const killProc = async (p: Proc, signal: NodeJS.Signals) => {
    const child = p.proc;
    if (!child) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  };
  const nodeOfPort = (port: number) => nodes.findIndex((n) => n.port === port);

  /**
   * Polls every gateway's /readyz (each poll bounded: a hung answer is not ready) from before the
   * fault until it is all 200 again; `readyMs(faultAt)` is how long after the fault the last
   * not-ready poll was followed by an all-ready one (0: never unready).
   */
  const watchReadiness = () => {
    const samples: Array<{ t: number; ready: boolean }> = [];
    let stop = false;
    const poll = async (h: string) => {
      try {
        const res = await fetch(`http://${h}/readyz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    };
    const loop = (async () => {
      while (!stop) {
        const t = Date.now();
        samples.push({ t, ready: (await Promise.all(hosts.map(poll))).every(Boolean) });
        await sleep(100);
      }
    })();
    return {
      async readyMs(faultAt: number): Promise<number> {
        await waitUntil(
          'every gateway ready',
          () => samples.length > 0 && samples[samples.length - 1].ready && samples[samples.length - 1].t > faultAt,
          60_000,
          100,
        );
        stop = true;
        await loop;
        const after = samples.filter((x) => x.t >= faultAt);
        const lastDown = after.map((x) => !x.ready).lastIndexOf(true);
        return lastDown < 0 ? 0 : after[lastDown + 1].t - faultAt;
      },
      async stop() {
        stop = true;
        await loop;
      },
    };
  };

  /**
   * A full text turn (five verdicts, a reply) and a full spoken turn (the WAV uploaded to
   * POST /v1/turns?speak=true: a transcript from whisperx, five verdicts, the reply, its audio from
   * xtts) on each gateway afterwards: every process serves again.
   */
  const everyProcessServes = async () => {
    for (const h of hosts) {
      const text = await http(h, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { text: 'hello there' } }).catch(
        () => null,
      );
      const spoken = await http(h, {
        method: 'POST',
        url: '/v1/turns?speak=true',
        headers: { ...auth('alice'), 'content-type': 'audio/wav' },
        payload: SPEECH_WAV,
      }).catch(() => null);
      for (const [res, needs] of [
        [text, ['reply']],
        [spoken, ['transcript', 'reply', 'audio']],
      ] as const) {
        const body = res?.statusCode === 200 ? res.json() : null;
        const types = (body?.events ?? []).map((e: { type: string }) => e.type);
        if (!(body?.outcome === 'ok' && types.filter((t: string) => t === 'verdict').length === 5 && needs.every((t) => types.includes(t))))
          return false;
      }
    }
    return true;
  };

  /** Received vs the vault's streams, on the current primary. */
  const compare = async () => {
    const primary = await primaryPort();
    let lost = 0;
    let duplicates = 0;
    let checked = 0;
    let checkedAudio = 0;
    let trimmed = 0;
    for (const d of drivers) {
      duplicates += d.duplicates;
      if (!d.sid) continue;
      const raw = (await ask(primary, 'XRANGE', `turn:${d.sid}:events`, '-', '+')) as [string, string[]][];
      const vault = new Map(
        raw.map(([id, f]) => {
          const o: Record<string, string> = {};
          for (let i = 0; i + 1 < f.length; i += 2) o[f[i]] = f[i + 1];
          return [Number(id.split('-')[0]), o] as const;
        }),
      );
      // MAXLEN ~ trims a stream's head: a failover can only take back its tail.
      const first = raw.length ? Number(raw[0][0].split('-')[0]) : Infinity;
      for (const [seq, ev] of d.seen) {
        if (seq < first && vault.size) {
          trimmed += 1;
          continue;
        }
        checked += 1;
        if (d.kind === 'audio') checkedAudio += 1;
        const v = vault.get(seq);
        if (!v || v.type !== ev.type || (v.turn ?? '') !== ev.turn) {
          lost += 1;
          // eslint-disable-next-line no-console
          if (lost <= 5)
            console.warn(
              `vault drill: lost ${d.name} seq ${seq}: shown ${ev.type}/${ev.turn}, vault has ${v ? `${v.type}/${v.turn}` : 'nothing'}`,
            );
        }
      }
    }
    return { lost, duplicates, checked, checkedAudio, trimmed };
  };

  const drill = async (name: string, fault: () => Promise<{ faultAt: number; note: string }>, assertClean: boolean) => {
    for (const d of drivers) d.reset();
    const before = new Map(drivers.map((d) => [d, d.reconnects]));
    for (const d of drivers) d.start();
    await sleep(2000); // steady load first
    const watch = watchReadiness();
    const { faultAt, note } = await fault().catch(async (err) => {
      await watch.stop();
      throw err;
    });
    const readyMs = await watch.readyMs(faultAt);
    await sleep(3000); // load keeps running on the recovered set
    await Promise.all(drivers.map((d) => d.stop()));
    const tally = (kind: Driver['kind']) =>
      drivers
        .filter((d) => d.kind === kind)
        .reduce((s, d) => ({ ok: s.ok + d.turns.ok, failed: s.failed + d.turns.failed, timedOut: s.timedOut + d.turns.timedOut }), {
          ok: 0,
          failed: 0,
          timedOut: 0,
        });
    const turns = tally('text');
    const audio = tally('audio');
    const { lost, duplicates, checked, checkedAudio, trimmed } = await compare();
    const recovered = await waitUntil('every process serves a full turn', everyProcessServes, 60_000, 500).then(
      () => true,
      () => false,
    );
    const reconnects = drivers.reduce((s, d) => s + d.reconnects - (before.get(d) ?? 0), 0);
    const commits = drivers.reduce((s, d) => s + d.commits, 0);
    const row = `| ${name} | ${turns.ok} | ${turns.failed} | ${turns.timedOut} | ${audio.ok} | ${audio.failed} | ${audio.timedOut} | ${checked} (${checkedAudio}) | ${lost} | ${duplicates} | ${readyMs} | ${reconnects} | ${recovered ? 'yes' : 'NO'} | ${note}; ${commits} utterances committed by the VAD${trimmed ? `; ${trimmed} trimmed` : ''} |`;
    rows.push(row);
    const why = drivers.flatMap((d) => [...d.why].map(([k, v]) => `${d.name}: ${k} x${v}`));
    // eslint-disable-next-line no-console
    if (why.length) console.log(`vault drill ${name}: turns not ok: ${why.join('; ')}`);
    // A loss is what the drill exists to find: the nodes' own logs of the fault go with it.
    // eslint-disable-next-line no-console
    if (lost)
      console.log(nodes.map((n, i) => `vault drill ${name}: redis ${i} (port ${n.port}) log tail:\n${n.log.slice(-3000)}`).join('\n'));
    // eslint-disable-next-line no-console
    console.log(`vault drill: ${row}`);
    if (assertClean) {
      expect(lost).toBe(0);
      expect(duplicates).toBe(0);
    }
    expect(recovered).toBe(true);
    expect(turns.ok).toBeGreaterThan(0);
    // The audio clients ran during the drill (their events are in the comparison above). Whether one
    // of their few turns fits the short fault window depends on the machine's load (a loaded 2-core
    // runner once had 0 ok of 2 in the SIGKILL window); that audio turns work again after the fault
    // is what `recovered` checks: a spoken turn with transcript, verdicts, reply and audio on every gateway.
    expect(audio.ok + audio.failed + audio.timedOut).toBeGreaterThan(0);
  };

  // Every duplicate a service makes of its vault client (each a Sentinel client of its own).
  const duplicates: Array<{ c: Redis }> = [];
  const realDuplicate = Redis.prototype.duplicate;
  beforeAll(() => {
    Redis.prototype.duplicate = function duplicate(this: Redis, ...args: Parameters<Redis['duplicate']>) {
      const c = realDuplicate.apply(this, args);
      duplicates.push({ c });
      return c;
    };
  });

  beforeAll(async () => {
    passwords = assembleAclFile(root);
    appendFileSync(join(root, 'users.acl'), `user drill on >${DRILL_PW} ~* &* +@all\n`);
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `node-${i}`);
      mkdirSync(dir);
      nodes.push({ port: await freePort(), dir, proc: null, log: '' });
    }
    await startNode(0);
    await startNode(1, nodes[0].port);
    await startNode(2, nodes[0].port);
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `sentinel-${i}`);
      mkdirSync(dir);
      const port = await freePort();
      sentinels.push({ port, dir, proc: null, log: '' });
      writeFileSync(
        join(dir, 'sentinel.conf'),
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor vault 127.0.0.1 ${nodes[0].port} 2`,
          `sentinel down-after-milliseconds vault ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout vault ${FAILOVER_TIMEOUT_MS}`,
          'sentinel parallel-syncs vault 2',
          'sentinel auth-user vault drill',
          `sentinel auth-pass vault ${DRILL_PW}`,
          // Sentinels talk to each other as default; services discover the primary as their own user.
          'user default on nopass ~* &* +@all',
          ...VAULT_USERS.map(
            (u) =>
              `user ${u} on >${passwords[u]} -@all +ping +auth +hello +client|setname +sentinel|get-master-addr-by-name +sentinel|sentinels +sentinel|replicas +subscribe +psubscribe +unsubscribe +punsubscribe +info &*`,
          ),
          '',
        ].join('\n'),
      );
    }
    for (let i = 0; i < 3; i++) await startSentinel(i);
    await waitUntil(
      'Sentinels know each other and both replicas',
      async () => {
        const info = (await askSentinel(sentinels[0].port, 'SENTINEL', 'master', 'vault')) as string[];
        const f = (k: string) => info[info.indexOf(k) + 1];
        return f('num-other-sentinels') === '2' && f('num-slaves') === '2';
      },
      30_000,
    );

    const setup = admin(nodes[0].port);
    await setup.connect();
    await loadOrbFunctions(setup);
    await writeIdentity(setup, vaultKeys(''), parseIdentity(readFileSync(join(REPO, 'services', 'seed', 'identity.json'), 'utf8')));
    setup.disconnect();

    const wc = (pod: string) => workerConfig({ podName: pod, reclaimIdleMs: 2000 });
    for (let n = 0; n < 5; n++) {
      workers.push(
        new WorkerRuntime(coreRole, {
          redis: serviceVault('core', `core4-${n}`),
          keyPrefix: '',
          http: false,
          worker: wc(`core4-${n}`),
          env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
        }),
      );
    }
    workers.push(
      new WorkerRuntime(caliRole, {
        redis: serviceVault('cali', 'cali-0'),
        keyPrefix: '',
        http: false,
        worker: wc('cali-0'),
        env: { CALI_QUORUM_GRACE_MS: '3000' },
      }),
    );
    const models = join(root, 'models');
    writeTinyWhisper(join(models, 'whisper'));
    writeTinyPiperVoices(join(models, 'voices'));
    workers.push(
      new WorkerRuntime(asrRole, {
        redis: serviceVault('whisperx', 'whisperx-0'),
        keyPrefix: '',
        http: false,
        worker: wc('whisperx-0'),
        env: { MODEL_DIR: join(models, 'whisper') },
      }),
    );
    workers.push(
      new WorkerRuntime(ttsRole, {
        redis: serviceVault('xtts', 'xtts-0'),
        keyPrefix: '',
        http: false,
        worker: wc('xtts-0'),
        env: { MODEL_DIR: join(models, 'voices'), TTS_DEFAULT_VOICE: 'tiny-en' },
      }),
    );
    await Promise.all(workers.map((w) => w.start()));
    for (const pod of ['orb-drill-a', 'orb-drill-b']) {
      const env = {
        ...vaultCfg('orb'),
        VAULT_KEY_PREFIX: '',
        POD_NAME: pod,
        ORB_API_KEYS: API_KEYS_ENV,
        LOG_LEVEL: 'silent',
        // The real Silero VAD ends the audio clients' utterances; 700 ms of silence keeps the fixture's sentence pauses inside one.
        ORB_VAD: 'true',
        ORB_VAD_SILENCE_MS: '700',
        ORB_WS_AUDIO_REALTIME: '100',
        ORB_MAX_EVENT_LOOP_DELAY_MS: '0',
        ORB_HEARTBEAT_MS: '500',
        ORB_HEARTBEAT_TTL_MS: '5000',
        ORB_TURN_DEADLINE_MS: '10000',
        ORB_RATE_LIMIT_MAX: '100000',
      };
      const app = await buildApp({ config: loadEnv(ORB_ENV, env), vault: loadEnv(VAULT_ENV, env), logger: false, tailBlockMs: 100 });
      gateways.push(app);
      hosts.push(await listen(app));
    }
    for (let i = 0; i < CLIENTS; i++) drivers.push(new Driver(() => hosts[i % hosts.length], `c${i}`));
    for (let i = 0; i < AUDIO_CLIENTS; i++) drivers.push(new Driver(() => hosts[i % hosts.length], `a${i}`, 'audio'));
    await waitUntil('the stack serves a full turn', everyProcessServes, 60_000, 500);
  }, 240_000);

  afterAll(async () => {
    await Promise.all(drivers.map((d) => d.stop()));
    for (const d of drivers) d.close();
    // QUIT leaves a Sentinel client's failover-detector subscriptions open; disconnect() closes them.
    for (const g of gateways) {
      await g.close().catch(() => undefined);
      g.vault.redis.disconnect();
    }
    await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
    for (const c of vaultClients) c.disconnect();
    Redis.prototype.duplicate = realDuplicate;
    // Services QUIT their duplicates on close; a Sentinel client's failover detector survives QUIT
    // (it is a process's last act in production), so close every one explicitly.
    for (const d of duplicates) d.c.disconnect();
    for (const p of [...sentinels, ...nodes]) {
      p.proc?.kill('SIGCONT');
      await killProc(p, 'SIGKILL');
    }
    // eslint-disable-next-line no-console
    if (rows.length)
      console.log(
        [
          'vault drills (issue #14):',
          '| drill | text turns ok | failed | timed out | audio turns ok | failed | timed out | events checked (of them in audio sessions) | acked lost | duplicates | ms until every /readyz 200 (0: never unready) | reconnects | every process serves, no restart | note |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
          ...rows,
        ].join('\n'),
      );
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  test('SIGKILL of the primary: a replica is promoted, nothing a client saw is lost or repeated', async () => {
    await drill(
      'SIGKILL primary',
      async () => {
        const old = nodeOfPort(await primaryPort());
        await killProc(nodes[old], 'SIGKILL');
        const faultAt = Date.now();
        const promoted = await waitUntil(
          'a replica is promoted',
          async () => {
            const p = await primaryPort().catch(() => 0);
            return p && p !== nodes[old].port && (await role(nodeOfPort(p)).catch(() => '')) === 'master' ? p : 0;
          },
          60_000,
          100,
        );
        const promotedMs = Date.now() - faultAt;
        await startNode(old, promoted);
        return { faultAt, note: `promoted after ${promotedMs} ms; old primary back as ${await role(old)}` };
      },
      true,
    );
  });

  test('SIGSTOP of the primary past down-after, then SIGCONT: it comes back as a replica, one primary only', async () => {
    let splitBrain = -1;
    await drill(
      'SIGSTOP primary',
      async () => {
        const old = nodeOfPort(await primaryPort());
        nodes[old].proc!.kill('SIGSTOP');
        const faultAt = Date.now();
        const promoted = await waitUntil(
          'a replica is promoted',
          async () => {
            const p = await primaryPort().catch(() => 0);
            return p && p !== nodes[old].port ? p : 0;
          },
          60_000,
          100,
        );
        const promotedMs = Date.now() - faultAt;
        if (Date.now() - faultAt < 2 * DOWN_AFTER_MS) await sleep(2 * DOWN_AFTER_MS - (Date.now() - faultAt));
        const stoppedMs = Date.now() - faultAt;
        nodes[old].proc!.kill('SIGCONT');
        await waitUntil('the old primary is demoted by the Sentinels', async () => (await role(old)) === 'slave', 60_000, 100);
        await waitUntil('the old primary syncs from the new one', () => linkUp(old), 60_000, 100);
        // No split brain: one node says master, and only that one accepts a write.
        const roles = await Promise.all([0, 1, 2].map((i) => role(i)));
        const accepted = await Promise.all(
          [0, 1, 2].map((i) =>
            ask(nodes[i].port, 'SET', 'orb:drill:probe', String(i)).then(
              () => 1,
              () => 0,
            ),
          ),
        );
        splitBrain =
          roles.filter((r) => r === 'master').length === 1 &&
          accepted.reduce((a: number, b) => a + b, 0) === 1 &&
          accepted[nodeOfPort(promoted)] === 1
            ? 0
            : 1;
        return {
          faultAt,
          note: `stopped ${stoppedMs} ms, promoted after ${promotedMs} ms; roles after ${roles.join('/')}; writes accepted by ${accepted.reduce((a: number, b) => a + b, 0)} node(s)`,
        };
      },
      true,
    );
    expect(splitBrain).toBe(0);
  });

  test('restart of one replica', async () => {
    await drill(
      'restart replica',
      async () => {
        const primary = await primaryPort();
        const victim = nodes.findIndex((n) => n.port !== primary);
        await killProc(nodes[victim], 'SIGTERM');
        const faultAt = Date.now();
        await startNode(victim, primary);
        return { faultAt, note: `replica back in sync after ${Date.now() - faultAt} ms` };
      },
      false,
    );
  });

  test('restart of one Sentinel', async () => {
    await drill(
      'restart Sentinel',
      async () => {
        await killProc(sentinels[0], 'SIGTERM');
        const faultAt = Date.now();
        await startSentinel(0);
        const primary = await primaryPort();
        await waitUntil(
          'the restarted Sentinel names the primary',
          async () => {
            return (
              Number(((await askSentinel(sentinels[0].port, 'SENTINEL', 'get-master-addr-by-name', 'vault')) as string[])[1]) === primary
            );
          },
          30_000,
        );
        return { faultAt, note: `Sentinel back after ${Date.now() - faultAt} ms` };
      },
      false,
    );
  });

  test('the comparison catches an event the vault does not hold, one it holds differently, and a repeat, in text and audio sessions', async () => {
    const base = await compare();
    for (const kind of ['text', 'audio'] as const) {
      const d = drivers.find((x) => x.kind === kind && x.sid && x.seen.size)!;
      // An audio session's last event is its spoken reply's turn.end; plant on an `audio` event where there is one.
      const entries = [...d.seen.entries()];
      const [seq, ev] = (kind === 'audio' ? entries.filter(([, e]) => e.type === 'audio').at(-1) : undefined) ?? entries.at(-1)!;
      d.seen.set(seq + 10_000, { type: 'reply', turn: ev.turn });
      d.seen.set(seq, { ...ev, type: ev.type === 'reply' ? 'verdict' : 'reply' });
      d.duplicates += 1;
    }
    const planted = await compare();
    expect(planted.lost).toBe(base.lost + 4);
    expect(planted.duplicates).toBe(base.duplicates + 2);
    expect(planted.checkedAudio).toBeGreaterThan(0);
  });

  // The first audio run of this drill lost a gateway for good after SIGKILL (every turn refused for
  // minutes, "Connection is closed." from ioredis' SentinelConnector): a +switch-master that lands
  // while a reconnect is asking the Sentinels ends the client (services/acp/vault.ts). Here that
  // timing is forced: the client's Sentinel lookups wait until the switch has been announced.
  test('a service client whose reconnect is mid-lookup when +switch-master comes still serves afterwards', async () => {
    const c = serviceVault('orb', 'orb-stray-end');
    c.on('error', () => undefined);
    let ends = 0;
    c.on('end', () => {
      ends += 1;
    });
    await c.ping();
    const watcher = new Redis({ host: '127.0.0.1', port: sentinels[1].port, lazyConnect: true, maxRetriesPerRequest: 0 });
    watcher.on('error', () => undefined);
    await watcher.connect();
    let switched = false;
    watcher.on('message', () => {
      switched = true;
    });
    await watcher.subscribe('+switch-master');
    const connector = (c as unknown as { connector: { resolve: (ep: unknown) => Promise<unknown> } }).connector;
    const resolve = connector.resolve.bind(connector);
    connector.resolve = async (ep) => {
      await waitUntil('the +switch-master announcement', () => switched, 30_000, 20).catch(() => undefined);
      await sleep(500); // the stale detector's copy of the message arrives too
      return resolve(ep);
    };
    try {
      const primary = await primaryPort();
      const list = String(await ask(primary, 'CLIENT', 'LIST'));
      const id = /id=(\d+) [^\n]*name=orb-stray-end /.exec(list)?.[1];
      expect(id).toBeDefined();
      await ask(primary, 'CLIENT', 'KILL', 'ID', id!);
      await waitUntil('the client is reconnecting', () => c.status !== 'ready', 10_000, 10);
      await new Promise<void>((ok, fail) => {
        const s = new Redis({ host: '127.0.0.1', port: sentinels[0].port, lazyConnect: true, maxRetriesPerRequest: 0 });
        s.on('error', () => undefined);
        s.connect()
          .then(() => s.call('SENTINEL', 'FAILOVER', 'vault'))
          .then(() => ok(), fail)
          .finally(() => s.disconnect());
      });
      await waitUntil('the failover is announced', () => switched, 30_000, 50);
      const served = await waitUntil(
        'the client serves again',
        () =>
          c.ping().then(
            (r) => r === 'PONG',
            () => false,
          ),
        20_000,
        200,
      ).then(
        () => true,
        () => false,
      );
      // eslint-disable-next-line no-console
      console.log(`vault drill: stray end: client ended ${ends} time(s) without its owner closing it; serves afterwards: ${served}`);
      expect(served).toBe(true);
    } finally {
      connector.resolve = resolve;
      watcher.disconnect();
    }
  });
});
