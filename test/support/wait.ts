/**
 * The one polling helper of the tests: no fixed sleeps in assertions, wait for the condition
 * instead, and name it so a timeout says what never happened.
 */

/**
 * Polls `check` every `intervalMs` until it returns a truthy value, and returns that value. A
 * check that throws is retried like a falsy one (a server still starting, a key not yet written);
 * at the deadline the error names `what` and the last thrown message.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
