/**
 * HTTP load on 127.0.0.1 with autocannon, bounded by request count and time. Latencies are taken
 * from autocannon's per-response event (float ms) because its summary histogram rounds to whole
 * milliseconds, too coarse for a sub-millisecond local request.
 */
import autocannon from 'autocannon';
import { summarize, type Summary } from './stats';

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  /** Upper bound on requests. */
  readonly amount: number;
  /** Upper bound on seconds; the run stops at whichever bound comes first. */
  readonly maxSeconds: number;
  readonly headers?: Record<string, string>;
}

export interface LoadResult {
  readonly requests: number;
  readonly rps: number;
  readonly latencyMs: Summary;
  readonly non2xx: number;
  readonly errors: number;
}

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let seen = 0;
  let lastAt = 0n;
  const inst = autocannon({
    url: opts.url,
    connections: opts.connections,
    // autocannon ignores `duration` when `amount` is set, so the request bound is enforced below.
    duration: opts.maxSeconds,
    headers: opts.headers,
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>; // the typings miss that the promise is also the event emitter
  inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms);
    lastAt = process.hrtime.bigint();
    if (++seen === opts.amount) inst.stop();
  });
  const t0 = process.hrtime.bigint();
  const r = await inst;
  // Up to the last response: the instance's own shutdown after a stop is not part of the load.
  const seconds = Number((lastAt || process.hrtime.bigint()) - t0) / 1e9;
  if (!latencies.length) throw new Error(`no 2xx response from ${opts.url} (non2xx ${r.non2xx}, errors ${r.errors})`);
  return {
    requests: latencies.length,
    rps: latencies.length / seconds,
    latencyMs: summarize(latencies),
    non2xx: r.non2xx,
    errors: r.errors,
  };
}
