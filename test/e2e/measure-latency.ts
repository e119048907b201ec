/**
 * `npm run latency [-- --turns N]`: voice-turn latency on the dev stack, split by stage:
 * end of speech (the client's input_audio.commit) -> transcript -> quorum (3rd verdict) -> reply
 * -> first reply-audio event -> first audio byte at the client. Stage times come from the events'
 * producer timestamps (all processes share this machine's clock); the last one from the client.
 * A measurement script, not a test: numbers depend on the machine. Writes artifacts/latency.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDevStack } from '../../scripts/dev';
import { nodeWsFactory, sessionWsUrl } from '../../services/cli/http';
import { OrbEvent } from '../../services/client/session-client';
import { runTurn } from '../../services/cli/turn';
import { ARTIFACTS, speechPcm16k } from './support';

const STAGES = [
  'speech end -> transcript',
  'transcript -> quorum',
  'quorum -> reply',
  'reply -> first audio',
  'first audio -> client',
  'speech end -> first audio byte',
] as const;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { turns: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' } } });
  const turns = Number(values.turns);
  const warmup = Number(values.warmup);
  const logs: string[] = [];
  const t0 = Date.now();
  const stack = await startDevStack({
    redisUrl: '',
    orbPorts: [0],
    web: false,
    env: { LOG_LEVEL: 'warn' },
    log: (n, l) => {
      logs.push(`${n} | ${l}`);
    },
    readyTimeoutMs: 300_000,
  });
  process.stdout.write(`dev stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${warmup} warm-up + ${turns} measured voice turns\n`);
  const pcm = speechPcm16k();
  const samples: Record<string, number[]> = Object.fromEntries(STAGES.map((s) => [s, []]));
  try {
    for (let i = 0; i < warmup + turns; i++) {
      let firstAudioRecv = 0;
      const r = await runTurn({
        urls: [sessionWsUrl(stack.orbUrls[0])],
        connect: nodeWsFactory(stack.apiKey),
        pcm,
        speak: true,
        timeoutMs: 120_000,
        onState: () => undefined,
        onEvent: (ev: OrbEvent) => {
          if (ev.type === 'audio' && !firstAudioRecv) firstAudioRecv = Date.now();
        },
      });
      if (r.outcome !== 'ok') throw new Error(`turn ${i}: ${r.outcome} ${r.error}\n${logs.slice(-30).join('\n')}`);
      const first = (t: string) => r.events.find((e) => e.type === t)?.ts;
      const verdictTs = r.events
        .filter((e) => e.type === 'verdict')
        .map((e) => e.ts ?? 0)
        .sort((a, b) => a - b);
      const transcript = first('transcript');
      const quorum = verdictTs[2];
      const reply = first('reply');
      const audio = first('audio');
      const start = first('turn.start');
      // The gateway stamps turn.start when it takes the commit: that is "speech end" on the server clock.
      if (!start || !transcript || !quorum || !reply || !audio)
        throw new Error(`turn ${i}: missing stage events: ${r.events.map((e) => e.type).join(',')}`);
      if (i < warmup) continue;
      samples['speech end -> transcript'].push(transcript - start);
      samples['transcript -> quorum'].push(quorum - transcript);
      samples['quorum -> reply'].push(reply - quorum);
      samples['reply -> first audio'].push(audio - reply);
      samples['first audio -> client'].push(firstAudioRecv - audio);
      samples['speech end -> first audio byte'].push(firstAudioRecv - start);
    }
  } finally {
    await stack.stop();
  }
  const rows = STAGES.map((s) => ({ stage: s, p50_ms: pct(samples[s], 50), p95_ms: pct(samples[s], 95), n: samples[s].length }));
  process.stdout.write(`\n${'stage'.padEnd(32)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)}\n`);
  for (const r of rows) process.stdout.write(`${r.stage.padEnd(32)} ${String(r.p50_ms).padStart(8)} ${String(r.p95_ms).padStart(8)}\n`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const out = join(ARTIFACTS, 'latency.json');
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), turns, rows, samples }, null, 2));
  process.stdout.write(`\nwrote ${out}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
