/**
 * vault-wait: what delivery after replication costs. A real primary + replica pair; the gateway's
 * EventHub tails turn event streams with the delivery fence (SET + WAIT 1 per read batch,
 * services/acp/replication.ts) and without it, in alternating blocks of the same loop:
 *  - latency: one event appended (FCALL orb_append) until the hub delivers it, sequentially;
 *  - text-turn shape: a turn's nine events (turn.start, transcript, five verdicts, reply, turn.end)
 *    appended back to back by `sessions` concurrent producers, from the first append until the
 *    hub delivered the turn.end (per-turn latency) and events delivered per second (throughput).
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { interleave } from './harness/interleave';
import { figure, NotAvailable, type Benchmark } from './harness/result';
import { startVault } from './harness/stack';
import { subject } from './harness/subject';
import { summarize } from './harness/stats';
import { startRedisServer } from '../tools/redis/redis-server';

const TURN = ['turn.start', 'transcript', 'verdict', 'verdict', 'verdict', 'verdict', 'verdict', 'reply', 'turn.end'] as const;

interface Round {
  latency: number[];
  turnMs: number[];
  events: number;
  seconds: number;
}

export const vaultWait: Benchmark = {
  name: 'vault-wait',
  title: 'Turn event delivery after replication (SET + WAIT 1 per read batch) vs delivery as soon as the primary has it',
  label:
    "primary and replica on one machine (loopback): the replica's ack round trip is the floor of the cost, a cross-node replica adds its network RTT per batch",
  async run({ quick, log }) {
    const acp = await subject('services/acp (TurnEventStream, loadOrbFunctions)', () => import('../services/acp'));
    const { DeliveryFence } = await subject('services/acp/replication (DeliveryFence)', () => import('../services/acp/replication'));
    const { EventHub } = await subject('services/orb/event-hub (EventHub)', () => import('../services/orb/event-hub'));
    const primary = await startVault();
    const replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }).catch((err: Error) => {
      throw new NotAvailable(`no replica redis-server: ${err.message}`);
    });
    const redis = new Redis(primary.url, { maxRetriesPerRequest: null });
    const writer = new Redis(primary.url, { maxRetriesPerRequest: null });
    try {
      await acp.loadOrbFunctions(redis);
      for (let i = 0; !/slave0:.*state=online/.test(String(await redis.info('replication'))); i++) {
        if (i > 200) throw new NotAvailable('the replica never came online');
        await new Promise((r) => setTimeout(r, 50));
      }
      const keys = acp.vaultKeys(`bench:${randomUUID().slice(0, 8)}:`);
      const writes = new acp.TurnEventStream(writer, keys);
      const fence = new DeliveryFence({ key: keys.orbFence('bench'), replicas: 1, timeoutMs: 5000 });
      const arms = {
        wait: { events: new acp.TurnEventStream(redis, keys, { fence }), fence },
        'no-wait': { events: new acp.TurnEventStream(redis, keys), fence: undefined },
      };
      const sessions = quick ? 16 : 32;
      const turnsPerSession = quick ? 4 : 10;
      const singles = quick ? 100 : 300;

      const round = (arm: keyof typeof arms) => async (): Promise<Round> => {
        const { events, fence: f } = arms[arm];
        const hub = new EventHub(redis, keys, events, { blockMs: 200, fence: f, onError: (e) => log(`${arm}: ${(e as Error).message}`) });
        const waiters = new Map<string, (seq: number) => void>();
        const subs: { close(): void }[] = [];
        const watch = async (sid: string) =>
          subs.push(
            await hub.subscribe(sid, 0, (evs) => {
              for (const ev of evs) waiters.get(`${sid}:${ev.seq}`)?.(ev.seq);
            }),
          );
        const delivered = (sid: string, seq: number) => new Promise<number>((resolve) => waiters.set(`${sid}:${seq}`, resolve));
        try {
          // Latency: one event at a time.
          const one = randomUUID();
          await watch(one);
          const latency: number[] = [];
          for (let i = 1; i <= singles; i++) {
            const t0 = performance.now();
            const seen = delivered(one, i);
            await writes.append(one, { type: 'transcript', turn: 't', data: { text: 'x'.repeat(40) } });
            await seen;
            latency.push(performance.now() - t0);
          }
          // Text-turn shape: concurrent producers.
          const sids = Array.from({ length: sessions }, () => randomUUID());
          await Promise.all(sids.map(watch));
          const turnMs: number[] = [];
          const t0 = performance.now();
          await Promise.all(
            sids.map(async (sid) => {
              for (let t = 0; t < turnsPerSession; t++) {
                const start = performance.now();
                const endSeq = (t + 1) * TURN.length;
                const seen = delivered(sid, endSeq);
                for (const type of TURN)
                  await writes.append(sid, { type, turn: `t${t}`, data: { text: 'hello there', label: 'greeting', confidence: 0.9 } });
                await seen;
                turnMs.push(performance.now() - start);
              }
            }),
          );
          const seconds = (performance.now() - t0) / 1000;
          return { latency, turnMs, events: sessions * turnsPerSession * TURN.length, seconds };
        } finally {
          for (const s of subs) s.close();
          await hub.close();
        }
      };
      await round('no-wait')(); // warm-up: JIT, connections, the function library
      await round('wait')();
      const rounds = quick ? 2 : 4;
      const r = await interleave(rounds, [
        { name: 'no-wait', round: round('no-wait') },
        { name: 'wait', round: round('wait') },
      ]);
      const lat = (k: string) => summarize(r[k].flatMap((x) => x.latency));
      const turn = (k: string) => summarize(r[k].flatMap((x) => x.turnMs));
      const tput = (k: string) => r[k].reduce((s, x) => s + x.events, 0) / r[k].reduce((s, x) => s + x.seconds, 0);
      const [lw, ln, tw, tn] = [lat('wait'), lat('no-wait'), turn('wait'), turn('no-wait')];
      const [pw, pn] = [tput('wait'), tput('no-wait')];
      log(
        `event p50 ${lw.p50.toFixed(3)} vs ${ln.p50.toFixed(3)} ms (x${(lw.p50 / ln.p50).toFixed(2)}), p99 ${lw.p99.toFixed(3)} vs ${ln.p99.toFixed(3)} ms (x${(lw.p99 / ln.p99).toFixed(2)})`,
      );
      log(
        `turn p50 ${tw.p50.toFixed(2)} vs ${tn.p50.toFixed(2)} ms (x${(tw.p50 / tn.p50).toFixed(2)}), p99 ${tw.p99.toFixed(2)} vs ${tn.p99.toFixed(2)} ms (x${(tw.p99 / tn.p99).toFixed(2)})`,
      );
      log(`throughput ${pw.toFixed(0)} vs ${pn.toFixed(0)} events/s (x${(pw / pn).toFixed(2)}); fences run: ${fence.rounds}`);
      const sl = 'delivery after replication (WAIT 1)';
      const bl = 'delivery from the primary (no WAIT)';
      return {
        figures: [
          figure({
            metric: 'event append -> delivered p50',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: lw.p50,
            baselineLabel: bl,
            baseline: ln.p50,
          }),
          figure({
            metric: 'event append -> delivered p99',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: lw.p99,
            baselineLabel: bl,
            baseline: ln.p99,
          }),
          figure({
            metric: `9-event turn -> turn.end delivered p50 (${sessions} sessions)`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: tw.p50,
            baselineLabel: bl,
            baseline: tn.p50,
          }),
          figure({
            metric: `9-event turn -> turn.end delivered p99 (${sessions} sessions)`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: tw.p99,
            baselineLabel: bl,
            baseline: tn.p99,
          }),
          figure({
            metric: 'events delivered per second',
            unit: 'events/s',
            better: 'higher',
            subjectLabel: sl,
            subject: pw,
            baselineLabel: bl,
            baseline: pn,
          }),
        ],
        details: {
          sessions,
          turnsPerSession,
          singleEventsPerRound: singles,
          rounds,
          fencesRun: fence.rounds,
          wait: { event: lw, turn: tw, eventsPerS: pw },
          noWait: { event: ln, turn: tn, eventsPerS: pn },
        },
      };
    } finally {
      redis.disconnect();
      writer.disconnect();
      await replica.stop({ removeDir: true });
      await primary.stop({ removeDir: true });
    }
  },
};
