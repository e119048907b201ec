/** Every benchmark, in the order `npm run bench` runs and prints them. */
import type { Benchmark } from './harness/result';
import { synth } from './synth';

export const BENCHMARKS: readonly Benchmark[] = [synth];
