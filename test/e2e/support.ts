/** Shared pieces of the e2e suite: what has landed, the fake-microphone WAV, polling. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { REPO_ROOT } from '../../scripts/dev';
import { waitUntil as pollUntil } from '../support/wait';

export const ARTIFACTS = join(REPO_ROOT, 'test', 'e2e', 'artifacts');
export const SPEECH_FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'speech-16k.wav');

/** Entry points the stack needs; a missing one means its engineer has not landed it yet. */
export function missingEntries(): string[] {
  return ['services/orb/main.ts', 'services/workers/main.ts', 'services/seed/main.ts'].filter((p) => !existsSync(join(REPO_ROOT, p)));
}

/** Why speech workers cannot run yet, or undefined when whisperx and xtts are registered. */
export function speechUnavailable(): string | undefined {
  if (!existsSync(join(REPO_ROOT, 'tools/tiny-models/cli.ts'))) return 'tools/tiny-models/cli.ts has not landed';
  const main = readFileSync(join(REPO_ROOT, 'services/workers/main.ts'), 'utf8');
  if (!/^\s*whisperx:/m.test(main) || !/^\s*xtts:/m.test(main)) return 'whisperx/xtts are not registered in services/workers/main.ts';
  return undefined;
}

/**
 * The WAV Chromium plays as its microphone: 1 s of silence, the spoken fixture, then 4 s of
 * silence (so client-side endpointing sees the end), at 48 kHz like a real capture device.
 */
export function fakeMicWav(out: string): string {
  const src = new WaveFile(readFileSync(SPEECH_FIXTURE));
  src.toBitDepth('16');
  const speech = src.getSamples(false, Int16Array) as unknown as Int16Array;
  const rate = (src.fmt as { sampleRate: number }).sampleRate;
  const pcm = new Int16Array(rate * 1 + speech.length + rate * 4);
  pcm.set(speech, rate);
  const wav = new WaveFile();
  wav.fromScratch(1, rate, '16', pcm);
  wav.toSampleRate(48_000);
  writeFileSync(out, wav.toBuffer());
  return out;
}

/** PCM16LE 16 kHz mono of the spoken fixture (for CLI/WebSocket audio turns). */
export function speechPcm16k(): Buffer {
  const w = new WaveFile(readFileSync(SPEECH_FIXTURE));
  if ((w.fmt as { sampleRate: number }).sampleRate !== 16_000) w.toSampleRate(16_000);
  w.toBitDepth('16');
  const s = w.getSamples(false, Int16Array) as unknown as Int16Array;
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
}

/** test/support/wait.ts's waitUntil with the e2e defaults (60 s, polled every 100 ms). */
export function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<NonNullable<T>> {
  return pollUntil(what, fn, timeoutMs, 100);
}
