/**
 * Turn stage trace, off unless ORB_TRACE=1: each process stamps the stages of a turn it touches
 * (gateway accept, job pickup, verdict published, quorum, reply, tail delivery, ...) with a
 * sub-millisecond epoch time, and writes them to stderr as `ORB_TRACE {json}` lines. All
 * processes of the dev stack share one clock, so `bench turn` joins the lines by turn id into a
 * per-stage breakdown. Marks are buffered and written off the hot path (a timer flushes them),
 * so tracing a turn does not add a synchronous write per stage to the latency it measures.
 */

/** True when this process traces turn stages (ORB_TRACE=1 at start). */
export const TRACE_ENABLED = process.env.ORB_TRACE === '1';

/** The line prefix `bench turn` looks for in a process's output. */
export const TRACE_PREFIX = 'ORB_TRACE ';

export interface TraceMark {
  readonly turn: string;
  /** e.g. `gw.accept`, `core:3.pickup`, `cali.quorum`. */
  readonly stage: string;
  /** Epoch ms with a fractional part. */
  readonly t: number;
}

const buffer: TraceMark[] = [];
let timer: NodeJS.Timeout | undefined;

function flush(): void {
  timer = undefined;
  if (!buffer.length) return;
  const lines = buffer
    .splice(0)
    .map((m) => `${TRACE_PREFIX}${JSON.stringify(m)}\n`)
    .join('');
  process.stderr.write(lines);
}

/** Epoch ms with sub-millisecond resolution (performance.timeOrigin + now()). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Records one stage of a turn (no-op unless ORB_TRACE=1). */
export function traceMark(turn: string, stage: string, t = preciseNow()): void {
  if (!TRACE_ENABLED) return;
  buffer.push({ turn, stage, t });
  if (!timer) {
    timer = setTimeout(flush, 50);
    timer.unref();
  }
}

/** Parses one output line; undefined for any line that is not a trace mark. */
export function parseTraceLine(line: string): TraceMark | undefined {
  const i = line.indexOf(TRACE_PREFIX);
  if (i < 0) return undefined;
  try {
    const m = JSON.parse(line.slice(i + TRACE_PREFIX.length)) as TraceMark;
    return typeof m.turn === 'string' && typeof m.stage === 'string' && typeof m.t === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

process.on('exit', flush);
