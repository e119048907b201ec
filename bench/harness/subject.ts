/** Loads a sibling module lazily, so a benchmark whose subject is missing reports why instead of crashing the run. */
import { NotAvailable } from './result';

export async function subject<T>(what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    throw new NotAvailable(`${what} could not be loaded (${msg})`);
  }
}

/** Time of one async call in ms (hrtime, sub-microsecond resolution). */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
