/**
 * gateway: req/s and p50/p99 of GET /v1/sessions/:id (auth + rate limit + a vault read) on one
 * orb-core replica vs its floor (bench/fixtures/session-read-floor.ts: Fastify 5, a bearer-token
 * string compare, one auto-pipelined HGETALL + XREVRANGE COUNT 1 on ioredis, logging off) reading
 * the same session from the same vault; and GET /readyz vs a bare Fastify hello-world. Same load
 * tool (autocannon), same connections, rounds interleaved. Every server runs in its own process;
 * the load runs in this one.
 */
import { interleave } from './harness/interleave';
import { load, type LoadResult } from './harness/load';
import { figure, type Benchmark, type Figure } from './harness/result';
import { median } from './harness/stats';
import { startGateway, startHello, startSessionReadFloor } from './harness/stack';

/** The session id in whatever shape POST /v1/sessions answers ({id} or {session: {id}}). */
export function sessionIdOf(body: unknown): string | undefined {
  const b = body as { id?: unknown; sessionId?: unknown; session?: { id?: unknown } } | null;
  const id = b?.id ?? b?.sessionId ?? b?.session?.id;
  return typeof id === 'string' ? id : undefined;
}

export async function createSession(url: string, apiKey: string): Promise<string> {
  const res = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: '{}',
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`POST /v1/sessions answered ${res.status}: ${text}`);
  const id = sessionIdOf(JSON.parse(text));
  if (!id) throw new Error(`POST /v1/sessions answered no session id: ${text}`);
  return id;
}

function compare(metric: string, subjectLabel: string, s: LoadResult[], baselineLabel: string, b: LoadResult[]): Figure[] {
  const med = (xs: LoadResult[], f: (x: LoadResult) => number) => median(xs.map(f));
  return [
    figure({
      metric: `${metric} throughput`,
      unit: 'req/s',
      better: 'higher',
      subjectLabel,
      subject: med(s, (x) => x.rps),
      baselineLabel,
      baseline: med(b, (x) => x.rps),
    }),
    figure({
      metric: `${metric} p50`,
      unit: 'ms',
      better: 'lower',
      subjectLabel,
      subject: med(s, (x) => x.latencyMs.p50),
      baselineLabel,
      baseline: med(b, (x) => x.latencyMs.p50),
    }),
    figure({
      metric: `${metric} p99`,
      unit: 'ms',
      better: 'lower',
      subjectLabel,
      subject: med(s, (x) => x.latencyMs.p99),
      baselineLabel,
      baseline: med(b, (x) => x.latencyMs.p99),
    }),
  ];
}

export const gateway: Benchmark = {
  name: 'gateway',
  title: 'orb-core GET /v1/sessions/:id vs its Fastify + ioredis floor, GET /readyz vs a bare Fastify hello-world (autocannon)',
  async run({ quick, root, log }) {
    const gw = await startGateway(root);
    const hello = await startHello(root).catch(async (err) => {
      await gw.stop();
      throw err;
    });
    const floor = await startSessionReadFloor(root, gw).catch(async (err) => {
      await hello.proc.stop();
      await gw.stop();
      throw err;
    });
    try {
      const sid = await createSession(gw.url, gw.apiKey);
      const auth = { authorization: `Bearer ${gw.apiKey}` };
      const connections = 10;
      const maxSeconds = quick ? 2 : 4;
      const amount = quick ? 20_000 : 200_000;
      const run = (url: string, headers?: Record<string, string>) => async () => {
        const r = await load({ url, connections, amount, maxSeconds, headers });
        if (r.non2xx || r.errors) throw new Error(`${url}: ${r.non2xx} non-2xx answers and ${r.errors} errors under load`);
        return r;
      };
      // Warm-up: JIT and connection pools, not measured.
      for (const [url, headers] of [
        [hello.url],
        [`${gw.url}/readyz`],
        [`${floor.url}/v1/sessions/${sid}`, auth],
        [`${gw.url}/v1/sessions/${sid}`, auth],
      ] as const) {
        await load({ url, headers, connections, amount: 2000, maxSeconds: 1 });
      }
      const rounds = quick ? 1 : 3;
      const r = await interleave(rounds, [
        { name: 'hello', round: run(hello.url) },
        { name: 'readyz', round: run(`${gw.url}/readyz`) },
        { name: 'floor', round: run(`${floor.url}/v1/sessions/${sid}`, auth) },
        { name: 'session', round: run(`${gw.url}/v1/sessions/${sid}`, auth) },
      ]);
      for (const [k, v] of Object.entries(r))
        log(
          `${k}: ${v.map((x) => `${x.rps.toFixed(0)} req/s p50 ${x.latencyMs.p50.toFixed(2)} p99 ${x.latencyMs.p99.toFixed(2)} ms`).join(' | ')}`,
        );
      return {
        figures: [
          ...compare('GET /v1/sessions/:id', 'orb-core', r.session, 'floor: Fastify + ioredis HGETALL/XREVRANGE', r.floor),
          ...compare('GET /readyz', 'orb-core', r.readyz, 'Fastify hello-world', r.hello),
        ],
        details: { connections, maxSecondsPerRound: maxSeconds, rounds, samples: r },
      };
    } finally {
      await floor.proc.stop();
      await hello.proc.stop();
      await gw.stop();
    }
  },
};
