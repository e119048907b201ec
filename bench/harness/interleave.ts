/**
 * Runs baseline and subject rounds alternately (ABBA order) so slow drift of a shared, noisy
 * machine (thermal, neighbours, GC of long-lived processes) hits both arms alike.
 */
export interface Arm<T> {
  readonly name: string;
  readonly round: (index: number) => Promise<T>;
}

export async function interleave<T>(rounds: number, arms: readonly Arm<T>[]): Promise<Record<string, T[]>> {
  if (rounds < 1) throw new Error(`'rounds' (${rounds}) must be at least 1`);
  const out: Record<string, T[]> = Object.fromEntries(arms.map((a) => [a.name, [] as T[]]));
  for (let r = 0; r < rounds; r++) {
    // Alternate the order each round: A B, B A, A B… cancels a first-mover advantage.
    const order = r % 2 === 0 ? arms : [...arms].reverse();
    for (const arm of order) out[arm.name].push(await arm.round(r));
  }
  return out;
}

/** The order `interleave` visits arms in, for inspection and tests. */
export function interleaveOrder(rounds: number, names: readonly string[]): string[] {
  const seq: string[] = [];
  for (let r = 0; r < rounds; r++) seq.push(...(r % 2 === 0 ? names : [...names].reverse()));
  return seq;
}
