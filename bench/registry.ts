/** Every benchmark, in the order `npm run bench` runs and prints them. */
import type { Benchmark } from './harness/result';
import { synth } from './synth';
import { gateway } from './gateway';
import { ws } from './ws';
import { memory } from './memory';
import { vad } from './vad';
import { vadBatch } from './vad-batch';
import { bus } from './bus';
import { turn } from './turn';
import { batching } from './batching';
import { speech } from './speech';
import { review } from './review';
import { capacity } from './capacity';
import { vaultWait } from './vault-wait';

export const BENCHMARKS: readonly Benchmark[] = [
  synth,
  gateway,
  ws,
  memory,
  bus,
  vad,
  vadBatch,
  turn,
  batching,
  speech,
  review,
  capacity,
  vaultWait,
];
