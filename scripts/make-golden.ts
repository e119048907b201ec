/**
 * Regenerates the golden utterances of `orb smoke --accept` with espeak-ng (apt-get install
 * espeak-ng): test/fixtures/golden/<id>.wav (16 kHz mono PCM16) and golden.json with the known text.
 *   npx tsx scripts/make-golden.ts [DIR]
 * The image ships them at /app/share/golden (Dockerfile).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WaveFile } from 'wavefile';

/** Plain words only: no digits or abbreviations, whose spelling an ASR may legitimately change. */
export const GOLDEN_TEXTS: Record<string, string> = {
  'golden-1': 'The quick brown fox jumps over the lazy dog.',
  'golden-2': 'Please remind me to call my sister this evening.',
  'golden-3': 'What will the weather be like tomorrow morning?',
};

const out = resolve(process.argv[2] ?? join(__dirname, '..', 'test', 'fixtures', 'golden'));
mkdirSync(out, { recursive: true });
for (const [id, text] of Object.entries(GOLDEN_TEXTS)) {
  const r = spawnSync('espeak-ng', ['-v', 'en-us', '-s', '150', '--stdout', text], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`espeak-ng failed (${r.error?.message ?? r.stderr}): apt-get install espeak-ng`);
  const wav = new WaveFile(r.stdout);
  wav.toSampleRate(16_000);
  wav.toBitDepth('16');
  writeFileSync(join(out, `${id}.wav`), wav.toBuffer());
}
const voice = /\d+\.\d+(\.\d+)?/.exec(spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' }).stdout)?.[0] ?? '?';
writeFileSync(
  join(out, 'golden.json'),
  `${JSON.stringify({ generator: `espeak-ng ${voice} -v en-us -s 150`, utterances: Object.entries(GOLDEN_TEXTS).map(([id, text]) => ({ id, file: `${id}.wav`, text })) }, null, 2)}\n`,
);
process.stdout.write(`wrote ${Object.keys(GOLDEN_TEXTS).length} golden utterances to ${out}\n`);
