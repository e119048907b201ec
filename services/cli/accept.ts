/**
 * `orb smoke --accept`: does a deployment with real weights transcribe and speak correctly?
 * Golden utterances (espeak-ng WAVs with their known text) go through the deployed ASR
 * (/v1/audio/transcriptions, word error rate against the text); the same text goes through the
 * deployed TTS (/v1/audio/speech) and back through the ASR (round-trip WER: intelligible speech);
 * one spoken turn measures the pipeline stage by stage. A table is printed; the check fails when a
 * stage fails or a WER is above its threshold. In test mode (the tiny models, which always say one
 * sentence) the thresholds are not applied, only the plumbing is checked, and the output says so.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrbHttpError, type OrbTarget } from './http';
import type { WsFactory } from '../client/session-client';
import { runTurn } from './turn';
import { wavToPcm16k } from './wav';

export interface GoldenUtterance {
  readonly id: string;
  readonly text: string;
  readonly wav: Buffer;
}

export interface AcceptOptions {
  readonly target: OrbTarget;
  readonly wsUrls: readonly string[];
  readonly connect: WsFactory;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
  readonly golden: readonly GoldenUtterance[];
  readonly maxWer: number;
  readonly maxRoundTripWer: number;
  readonly testMode: boolean;
  /** @default - the deployment's default voice */
  readonly voice?: string;
}

export interface UtteranceResult {
  readonly id: string;
  readonly text: string;
  readonly asrText?: string;
  readonly asrMs?: number;
  readonly wer?: number;
  readonly ttsMs?: number;
  readonly ttsSeconds?: number;
  readonly roundTripText?: string;
  readonly roundTripMs?: number;
  readonly roundTripWer?: number;
  readonly error?: string;
}

export interface AcceptReport {
  readonly passed: boolean;
  readonly testMode: boolean;
  readonly utterances: readonly UtteranceResult[];
  /** Corpus WER: word errors over reference words, all utterances together. */
  readonly wer?: number;
  readonly roundTripWer?: number;
  readonly turn: Partial<Record<'transcript' | 'reply' | 'first_audio' | 'turn.end', number>> & { error?: string };
  readonly problems: readonly string[];
}

/** Lower case, punctuation out (apostrophes kept), split on whitespace. */
export function words(s: string): string[] {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}'\s]+/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word-level edit distance (substitutions + deletions + insertions). */
export function wordErrors(reference: readonly string[], hypothesis: readonly string[]): number {
  let prev = Array.from({ length: hypothesis.length + 1 }, (_, j) => j);
  for (let i = 1; i <= reference.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hypothesis.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (reference[i - 1] === hypothesis[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[hypothesis.length];
}

export function wer(reference: string, hypothesis: string): number {
  const r = words(reference);
  return r.length ? wordErrors(r, words(hypothesis)) / r.length : words(hypothesis).length ? 1 : 0;
}

/** Golden utterances from a folder: golden.json `{ utterances: [{ id, file, text }] }` plus the WAVs. */
export function loadGolden(dir: string): GoldenUtterance[] {
  let index: { utterances?: Array<{ id: string; file: string; text: string }> };
  try {
    index = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
  } catch (err) {
    throw new Error(`no golden utterances in ${dir} (golden.json: ${(err as Error).message}); pass --golden DIR`);
  }
  const list = index.utterances ?? [];
  if (!list.length) throw new Error(`${dir}/golden.json lists no utterance`);
  return list.map((u) => ({ id: u.id, text: u.text, wav: readFileSync(join(dir, u.file)) }));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

async function call(t: OrbTarget, path: string, init: { body: FormData | string; json?: boolean }): Promise<Response> {
  const url = new URL(path, t.url.endsWith('/') ? t.url : `${t.url}/`);
  const headers: Record<string, string> = { authorization: `Bearer ${t.apiKey}` };
  if (init.json) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method: 'POST', headers, body: init.body, signal: AbortSignal.timeout(t.timeoutMs ?? 60_000) });
  if (!res.ok) {
    const text = await res.text();
    let b: { code?: string; message?: string } = {};
    try {
      b = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    throw new OrbHttpError(res.status, b.code ?? `HTTP_${res.status}`, b.message ?? text.slice(0, 200));
  }
  return res;
}

/** The deployed ASR on one WAV (OpenAI-shaped transcription route of the gateway). */
export async function transcribe(t: OrbTarget, wav: Buffer): Promise<string> {
  const form = new FormData();
  form.set('file', new Blob([wav], { type: 'audio/wav' }), 'utterance.wav');
  form.set('model', 'whisper-1');
  form.set('language', 'en');
  form.set('response_format', 'json');
  const res = await call(t, 'v1/audio/transcriptions', { body: form });
  return ((await res.json()) as { text: string }).text;
}

/** The deployed TTS: a WAV of `text`. */
export async function synthesize(t: OrbTarget, text: string, voice?: string): Promise<Buffer> {
  const res = await call(t, 'v1/audio/speech', {
    body: JSON.stringify({ model: 'tts-1', input: text, voice: voice || 'alloy', response_format: 'wav' }),
    json: true,
  });
  return Buffer.from(await res.arrayBuffer());
}

async function checkUtterance(o: AcceptOptions, u: GoldenUtterance): Promise<UtteranceResult> {
  const out: { -readonly [K in keyof UtteranceResult]: UtteranceResult[K] } = { id: u.id, text: u.text };
  try {
    const asr = await timed(() => transcribe(o.target, u.wav));
    Object.assign(out, { asrText: asr.value, asrMs: asr.ms, wer: wer(u.text, asr.value) });
    const tts = await timed(() => synthesize(o.target, u.text, o.voice));
    const seconds = wavToPcm16k(tts.value).length / 2 / 16_000;
    Object.assign(out, { ttsMs: tts.ms, ttsSeconds: seconds });
    const rt = await timed(() => transcribe(o.target, tts.value));
    Object.assign(out, { roundTripText: rt.value, roundTripMs: rt.ms, roundTripWer: wer(u.text, rt.value) });
  } catch (err) {
    out.error = (err as Error).message;
  }
  return out;
}

function corpusWer(results: readonly UtteranceResult[], hyp: (r: UtteranceResult) => string | undefined): number | undefined {
  const done = results.filter((r) => hyp(r) !== undefined);
  if (!done.length) return undefined;
  const errors = done.reduce((n, r) => n + wordErrors(words(r.text), words(hyp(r)!)), 0);
  return errors / done.reduce((n, r) => n + words(r.text).length, 0);
}

/** What must hold: every stage answered; outside test mode, the WERs within their thresholds. */
function judge(
  o: AcceptOptions,
  results: readonly UtteranceResult[],
  w: number | undefined,
  rtw: number | undefined,
  turn: AcceptReport['turn'],
): string[] {
  const p: string[] = [];
  for (const r of results) {
    if (r.error) p.push(`${r.id}: ${r.error}`);
    else {
      if (!r.asrText?.trim()) p.push(`${r.id}: the ASR returned no text`);
      if (!(r.ttsSeconds && r.ttsSeconds > 0.1)) p.push(`${r.id}: the TTS returned ${r.ttsSeconds ?? 0} s of audio`);
      // The tiny voices do not make speech (VAD finds none): in test mode the round trip answering is the check.
      if (!o.testMode && !r.roundTripText?.trim()) p.push(`${r.id}: the ASR found no speech in the TTS audio`);
    }
  }
  if (turn.error) p.push(`spoken turn: ${turn.error}`);
  if (o.testMode) return p;
  if (w !== undefined && w > o.maxWer) p.push(`ASR word error rate ${w.toFixed(3)} is above the threshold ${o.maxWer}`);
  if (rtw !== undefined && rtw > o.maxRoundTripWer)
    p.push(`TTS round-trip word error rate ${rtw.toFixed(3)} is above the threshold ${o.maxRoundTripWer}`);
  const texts = new Set(results.map((r) => r.asrText).filter(Boolean));
  if (results.length > 1 && texts.size === 1)
    p.push(`every utterance was transcribed as "${[...texts][0]}": are these the tiny test models? (--test-mode)`);
  return p;
}

const pad = (s: string | number | undefined, n: number) => String(s ?? '-').padStart(n);
const fmt = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));

function printTable(o: AcceptOptions, r: AcceptReport): void {
  o.log(
    `utterance  ${'asr ms'.padStart(7)} ${'wer'.padStart(5)} ${'tts ms'.padStart(7)} ${'audio s'.padStart(7)} ${'rt-asr ms'.padStart(9)} ${'rt wer'.padStart(6)}  asr transcript / round-trip transcript`,
  );
  for (const u of r.utterances) {
    const texts = u.error ? `ERROR ${u.error}` : `${JSON.stringify(u.asrText)} / ${JSON.stringify(u.roundTripText)}`;
    o.log(
      `${u.id.padEnd(10)} ${pad(u.asrMs, 7)} ${pad(fmt(u.wer), 5)} ${pad(u.ttsMs, 7)} ${pad(fmt(u.ttsSeconds), 7)} ${pad(u.roundTripMs, 9)} ${pad(fmt(u.roundTripWer), 6)}  ${texts}`,
    );
  }
  o.log(
    `corpus     ${''.padStart(7)} ${pad(fmt(r.wer), 5)} ${''.padStart(7)} ${''.padStart(7)} ${''.padStart(9)} ${pad(fmt(r.roundTripWer), 6)}  thresholds: wer <= ${o.maxWer}, rt wer <= ${o.maxRoundTripWer}${r.testMode ? ' (not applied: test mode)' : ''}`,
  );
  const t = r.turn;
  o.log(
    `spoken turn (ms from the end of speech): transcript ${pad(t.transcript, 5)}  reply ${pad(t.reply, 5)}  first audio ${pad(t.first_audio, 5)}  end ${pad(t['turn.end'], 5)}${t.error ? `  ERROR ${t.error}` : ''}`,
  );
}

export async function runAcceptance(o: AcceptOptions): Promise<AcceptReport> {
  if (o.testMode)
    o.log(
      'accept: TEST MODE: tiny models (they always say one sentence): the plumbing is checked, word error rates are shown but not judged',
    );
  o.log(`accept: ${o.golden.length} golden utterance(s) through ASR, TTS and the ASR again; one spoken turn`);
  const utterances: UtteranceResult[] = [];
  for (const u of o.golden) utterances.push(await checkUtterance(o, u));
  let turn: AcceptReport['turn'];
  try {
    const r = await runTurn({ urls: o.wsUrls, connect: o.connect, pcm: wavToPcm16k(o.golden[0].wav), timeoutMs: o.timeoutMs, speak: true });
    turn = {
      transcript: r.timings.transcript,
      reply: r.timings.reply,
      first_audio: r.timings.first_audio,
      'turn.end': r.timings['turn.end'],
    };
    if (r.outcome !== 'ok') turn.error = `turn ${r.outcome}: ${r.error ?? ''}`;
    else if (!r.audio.length) turn.error = 'no reply audio';
  } catch (err) {
    turn = { error: (err as Error).message };
  }
  const w = corpusWer(utterances, (r) => r.asrText);
  const rtw = corpusWer(utterances, (r) => r.roundTripText);
  const problems = judge(o, utterances, w, rtw, turn);
  const report: AcceptReport = {
    passed: problems.length === 0,
    testMode: o.testMode,
    utterances,
    wer: w,
    roundTripWer: rtw,
    turn,
    problems,
  };
  printTable(o, report);
  for (const p of problems) o.log(`FAIL  ${p}`);
  o.log(
    report.passed
      ? `accept: PASSED${o.testMode ? ' in TEST MODE (plumbing only; rerun without --test-mode on real weights)' : ''}`
      : `accept: FAILED (${problems.length} problem(s))`,
  );
  return report;
}
