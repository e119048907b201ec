import { waitUntil } from './wait';

describe("waitUntil (the tests' one polling helper)", () => {
  it('returns the first truthy value the check gives', async () => {
    let n = 0;
    await expect(waitUntil('the third poll', () => (++n >= 3 ? `poll ${n}` : false), 5_000, 1)).resolves.toBe('poll 3');
    expect(n).toBe(3);
  });

  it('retries a check that throws, and returns once it passes', async () => {
    let n = 0;
    const v = await waitUntil(
      'a check that throws twice',
      async () => {
        if (++n < 3) throw new Error('not yet');
        return { n };
      },
      5_000,
      1,
    );
    expect(v).toEqual({ n: 3 });
  });

  it('fails at the deadline naming what it waited for and the last error', async () => {
    let n = 0;
    await expect(
      waitUntil(
        'the key to appear',
        () => {
          throw new Error(`miss ${++n}`);
        },
        20,
        1,
      ),
    ).rejects.toThrow(new RegExp(`timed out after 20 ms waiting for the key to appear: miss \\d+$`));
    await expect(waitUntil('nothing', () => 0, 5, 1)).rejects.toThrow('timed out after 5 ms waiting for nothing');
  });
});
