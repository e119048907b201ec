/**
 * bus: one ACP job round trip gateway -> worker -> gateway through Redis Streams (publish to
 * `acp:jobs:<queue>`, the worker runtime's consumer group reads it, the handler emits a result
 * to `turn:{sid}:events`, the caller's tail sees it) vs a direct Fastify HTTP call carrying the
 * same no-op. Sequential round trips; blocks alternate between the arms. Two worker arms: an
 * idempotent handler (as the cores: the first delivery skips the done-record read, and its one
 * result goes out with the job's commit in one FCALL, emitFinal) and one that reads it first and
 * commits after its emit (as CALI, ASR, TTS — and every hop before these two changes). The floor: one raw
 * XADD -> blocked XREAD round trip on the same redis-server, which no ACP hop can beat.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import Redis from 'ioredis';
import { interleave } from './harness/interleave';
import { figure, type Benchmark } from './harness/result';
import { freePort, startTs, startVault } from './harness/stack';
import { subject, timed } from './harness/subject';
import { summarize } from './harness/stats';

export const bus: Benchmark = {
  name: 'bus',
  title: 'ACP job round trip through Redis Streams (worker runtime) vs a direct Fastify HTTP call',
  async run({ quick, root, log }) {
    const acpMod = await subject('services/acp (createAcp, createEnvelope)', () => import('../services/acp'));
    await subject('services/workers/runtime (runWorker)', () => import('../services/workers/runtime'));
    const vault = await startVault();
    const prefix = `bench:${randomUUID().slice(0, 8)}:`;
    const redis = new Redis(vault.url, { maxRetriesPerRequest: null });
    // The bootstrap step of every deployment (seed init container, npm run dev, test setup): the
    // services only FCALL the orb library, so this bench's own vault needs it loaded too.
    await acpMod.loadOrbFunctions(redis);
    const acp = acpMod.createAcp(redis, { prefix });
    const abort = new AbortController();
    const cleanup: Array<() => Promise<unknown>> = [];
    try {
      for (const [queue, idem] of [
        ['bench-echo', '1'],
        ['bench-echo-checked', '0'],
      ]) {
        const wport = await freePort();
        const worker = await startTs(
          root,
          'bench/fixtures/echo-worker.ts',
          [],
          {
            REDIS_URL: vault.url,
            VAULT_KEY_PREFIX: prefix,
            POD_NAME: `${queue}-0`,
            LOG_LEVEL: 'warn',
            ACP_TRIM_INTERVAL_MS: '0',
            BENCH_ECHO_QUEUE: queue,
            BENCH_ECHO_IDEMPOTENT: idem,
          },
          wport,
        );
        cleanup.push(() => worker.stop());
      }
      const hport = await freePort();
      const http = await startTs(root, 'bench/fixtures/echo-http.ts', [], {}, hport);
      cleanup.push(() => http.stop());

      // The gateway side: one tail per session resolves the waiter of each job by its id.
      const session = randomUUID();
      const waiters = new Map<string, () => void>();
      const tailing = (async () => {
        for await (const ev of acp.events.tail(session, 0, { signal: abort.signal })) waiters.get(ev.job)?.();
      })().catch(() => undefined);
      const busTo = (queue: string) => async () => {
        const env = acpMod.createEnvelope({
          kind: 'bench.echo',
          session,
          turn: 'bench',
          parts: [acpMod.textPart('ping')],
          timeoutMs: 30_000,
        });
        const seen = new Promise<void>((resolve) => waiters.set(env.id, resolve));
        await acp.bus.publish(queue, env);
        await seen;
        waiters.delete(env.id);
      };
      const viaBus = busTo('bench-echo');
      const viaBusChecked = busTo('bench-echo-checked');
      // The floor: XADD on the shared client, XREAD BLOCK on a second connection waiting for it.
      const rawKey = `${prefix}raw`;
      const rawReader = new Redis(vault.url, { maxRetriesPerRequest: null });
      cleanup.push(async () => rawReader.disconnect());
      let rawLast = '$';
      const viaRaw = async () => {
        const read = rawReader.xread('BLOCK', 5000, 'STREAMS', rawKey, rawLast) as Promise<[string, [string, string[]][]][] | null>;
        await redis.xadd(rawKey, 'MAXLEN', '~', 1000, '*', 'v', '1');
        const res = await read;
        const entries = res?.[0]?.[1] ?? [];
        if (!entries.length) throw new Error('raw XREAD returned nothing');
        rawLast = entries[entries.length - 1][0];
      };
      // node:http with one kept-alive socket: the leanest direct call, as ioredis is on the bus side.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      cleanup.push(async () => agent.destroy());
      const viaHttp = () =>
        new Promise<void>((resolve, reject) => {
          const body = JSON.stringify({ id: randomUUID() });
          const req = request(
            {
              host: '127.0.0.1',
              port: hport,
              path: '/echo',
              method: 'POST',
              agent,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              const parts: Buffer[] = [];
              res.on('data', (d: Buffer) => parts.push(d));
              res.on('end', () => {
                JSON.parse(Buffer.concat(parts).toString());
                resolve();
              });
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const block = (f: () => Promise<void>, n: number) => async () => {
        const ms: number[] = [];
        for (let i = 0; i < n; i++) ms.push(await timed(f));
        return ms;
      };
      // The first raw XREAD must be waiting before its XADD: give the reader its connection first.
      await rawReader.ping();
      await block(viaBus, 50)(); // warm-up: JIT, connections, consumer group
      await block(viaBusChecked, 50)();
      await block(viaHttp, 50)();
      await block(viaRaw, 50)();
      const perBlock = quick ? 100 : 250;
      const rounds = quick ? 2 : 6;
      const r = await interleave(rounds, [
        { name: 'http', round: block(viaHttp, perBlock) },
        { name: 'bus', round: block(viaBus, perBlock) },
        { name: 'checked', round: block(viaBusChecked, perBlock) },
        { name: 'raw', round: block(viaRaw, perBlock) },
      ]);
      abort.abort();
      await tailing;
      const s = summarize(r.bus.flat());
      const c = summarize(r.checked.flat());
      const b = summarize(r.http.flat());
      const f = summarize(r.raw.flat());
      log(
        `bus p50 ${s.p50.toFixed(3)} p99 ${s.p99.toFixed(3)} ms; bus with done check first p50 ${c.p50.toFixed(3)} p99 ${c.p99.toFixed(3)} ms; ` +
          `http p50 ${b.p50.toFixed(3)} p99 ${b.p99.toFixed(3)} ms; raw XADD->XREAD p50 ${f.p50.toFixed(3)} p99 ${f.p99.toFixed(3)} ms (${s.n} round trips each)`,
      );
      const sl = 'ACP via Redis Streams (idempotent handler, as the cores)';
      const cl = 'ACP hop with the done-record read first and a separate commit (pre-change path; CALI/ASR/TTS)';
      const bl = 'direct Fastify HTTP (keep-alive)';
      const fl = 'raw XADD -> XREAD round trip (floor)';
      return {
        figures: [
          figure({
            metric: 'round trip p50',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p50,
            baselineLabel: bl,
            baseline: b.p50,
          }),
          figure({
            metric: 'round trip p99',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p99,
            baselineLabel: bl,
            baseline: b.p99,
          }),
          figure({
            metric: 'ACP hop p99 vs the done-check-first hop',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p99,
            baselineLabel: cl,
            baseline: c.p99,
          }),
          figure({
            metric: 'ACP hop p50 vs the raw stream floor',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p50,
            baselineLabel: fl,
            baseline: f.p50,
          }),
          figure({
            metric: 'ACP hop p99 vs the raw stream floor',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p99,
            baselineLabel: fl,
            baseline: f.p99,
          }),
        ],
        details: { roundTripsPerArm: s.n, bus: s, checked: c, http: b, raw: f },
      };
    } finally {
      abort.abort();
      await acp.close();
      redis.disconnect();
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      await vault.stop({ removeDir: true });
    }
  },
};
