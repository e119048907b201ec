/** The acceptance check's arithmetic and inputs (the run against a stack is test/e2e/accept.test.ts). */
import { join } from 'node:path';
import { loadGolden, wer, wordErrors, words } from '../../../services/cli/accept';
import { wavToPcm16k } from '../../../services/cli/wav';

describe('word error rate', () => {
  test('normalizes case and punctuation, keeps apostrophes', () => {
    expect(words("The quick, brown FOX — isn't it?")).toEqual(['the', 'quick', 'brown', 'fox', "isn't", 'it']);
  });
  test.each([
    ['the quick brown fox', 'the quick brown fox', 0],
    ['the quick brown fox', 'the quick fox', 0.25], // one deletion
    ['the quick brown fox', 'the quick brown red fox', 0.25], // one insertion
    ['the quick brown fox', 'a quick brown box', 0.5], // two substitutions
    ['the quick brown fox', '', 1],
    ['the quick brown fox', 'hello world from the orb', 1.25], // can exceed 1
  ])('wer(%j, %j) = %d', (ref, hyp, expected) => {
    expect(wer(ref, hyp)).toBeCloseTo(expected, 10);
  });
  test('edit distance counts each kind once', () => {
    expect(wordErrors(['a', 'b', 'c'], ['a', 'x', 'c', 'd'])).toBe(2);
  });
});

test('the committed golden utterances are 16 kHz speech with their known text', () => {
  const golden = loadGolden(join(__dirname, '..', '..', 'fixtures', 'golden'));
  expect(golden.map((g) => g.id)).toEqual(['golden-1', 'golden-2', 'golden-3']);
  for (const g of golden) {
    expect(words(g.text).length).toBeGreaterThanOrEqual(8);
    const seconds = wavToPcm16k(g.wav).length / 2 / 16_000;
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(6);
  }
  expect(() => loadGolden('/nonexistent')).toThrow('no golden utterances in /nonexistent');
});
