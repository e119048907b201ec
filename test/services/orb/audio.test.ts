/** The gateway's WAV/PCM parsing against the spec, and fuzzed: every input decodes exactly or is refused with an ORB_ERR_AUDIO_* code. */
import { checkRawPcm, parseWav, pcmFromWav } from '../../../services/orb/audio';
import { buildWav, defaultPcm16le } from './wav-builder';

test('RIFF, RIFX and WAVE_FORMAT_EXTENSIBLE decode to the same PCM16LE', () => {
  for (const wav of [
    buildWav(),
    buildWav({ order: 'BE' }),
    buildWav({ extensible: {} }),
    buildWav({ order: 'BE', extensible: {} }),
    buildWav({ before: [['LIST', Buffer.from('INFOx')]] }),
    buildWav({ trailing: Buffer.from([0]) }),
  ]) {
    expect(pcmFromWav(wav).equals(defaultPcm16le())).toBe(true);
  }
  expect(parseWav(buildWav({ extensible: {} }))).toMatchObject({ formatTag: 1, extensible: true, validBitsPerSample: 16 });
});

test('audio/L16 is network byte order; audio/pcm little-endian', () => {
  expect(checkRawPcm('audio/L16; rate=16000', defaultPcm16le().swap16()).equals(defaultPcm16le())).toBe(true);
  expect(checkRawPcm('audio/pcm', defaultPcm16le()).equals(defaultPcm16le())).toBe(true);
});

/** xorshift32: a reproducible stream of mutations from a printed seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

test('break it: 20 000 mutated WAV files never throw anything but a 4xx audio code, and what decodes is whole samples', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 0xffffffff);
  const r = rng(seed);
  const seeds = [
    buildWav(),
    buildWav({ order: 'BE' }),
    buildWav({ extensible: {} }),
    buildWav({ before: [['LIST', Buffer.from('INFOx')]] }),
  ];
  const tally = { tried: 0, decoded: 0, malformed: 0, format: 0, other: 0 };
  const others: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const buf = Buffer.from(seeds[Math.floor(r() * seeds.length)]);
    const edits = 1 + Math.floor(r() * 4);
    let bytes = buf;
    for (let e = 0; e < edits; e++) {
      const kind = r();
      // Mostly header bytes (the first 80), where the lies live; sometimes truncation or extension.
      if (kind < 0.7) bytes[Math.floor(r() * Math.min(80, bytes.length))] = Math.floor(r() * 256);
      else if (kind < 0.85) bytes = bytes.subarray(0, Math.floor(r() * bytes.length));
      else bytes = Buffer.concat([bytes, Buffer.alloc(Math.floor(r() * 8), Math.floor(r() * 256))]);
    }
    tally.tried++;
    try {
      const pcm = pcmFromWav(bytes);
      expect(pcm.length % 2).toBe(0);
      expect(pcm.length).toBeGreaterThan(0);
      tally.decoded++;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ORB_ERR_AUDIO_MALFORMED') tally.malformed++;
      else if (code === 'ORB_ERR_AUDIO_FORMAT') tally.format++;
      else {
        tally.other++;
        if (others.length < 5) others.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
    }
  }
  console.log(
    `WAV fuzz (seed ${seed}): tried ${tally.tried}, decoded ${tally.decoded}, 400 malformed ${tally.malformed}, 415 format ${tally.format}, other errors ${tally.other}`,
  );
  expect(others).toEqual([]);
});
