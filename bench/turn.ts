/**
 * turn: a text turn and an audio turn end to end on the dev stack (scripts/dev.ts: vault, seed,
 * one orb-core, five cores, CALI, whisperx and xtts on CPU with the tiny models), split by stage
 * from the turn's event timestamps (every process runs on this machine, one clock).
 * Baselines in the same run: the text turn against a plain GET /v1/sessions/:id on the same
 * gateway (one vault read), the audio turn against the text turn (what the speech stages add),
 * and every stage as a share of its turn's total.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { figure, NotAvailable, type Benchmark, type Figure } from './harness/result';
import { median, percentile } from './harness/stats';
import { subject, timed } from './harness/subject';

interface Ev { seq: number; type: string; ts: number; data?: Record<string, unknown> }

/** Milestones of one turn in order; a missing one (e.g. no transcript event) is skipped. */
export function stagesOf(sentAt: number, receivedAt: number, events: readonly Ev[]): Record<string, number> {
  const evs = [...events].sort((a, b) => a.seq - b.seq);
  const first = (t: string) => evs.find((e) => e.type === t)?.ts;
  const reply = first('reply');
  // The verdict CALI could act on last: the latest one stamped before the reply.
  const verdicts = evs.filter((e) => e.type === 'verdict' && (reply === undefined || e.ts <= reply));
  const marks: Array<[string, number | undefined]> = [
    ['sent', sentAt],
    ['turn.start', first('turn.start')],
    ['transcript', first('transcript')],
    ['verdicts', verdicts.length ? Math.max(...verdicts.map((v) => v.ts)) : undefined],
    ['reply', reply],
    ['first audio', first('audio')],
    ['turn.end', first('turn.end')],
    ['received', receivedAt],
  ];
  const present = marks.filter((m): m is [string, number] => typeof m[1] === 'number' && Number.isFinite(m[1]));
  const out: Record<string, number> = {};
  for (let i = 1; i < present.length; i++) out[`${present[i - 1][0]} -> ${present[i][0]}`] = Math.max(0, present[i][1] - present[i - 1][1]);
  out.total = receivedAt - sentAt;
  return out;
}

function speechLanded(root: string): string | undefined {
  const need = ['services/workers/asr', 'services/workers/tts', 'tools/tiny-models/cli.ts'];
  const missing = need.filter((p) => !existsSync(join(root, p)));
  if (missing.length) return `${missing.join(', ')} not landed`;
  const main = readFileSync(join(root, 'services/workers/main.ts'), 'utf8');
  if (!/^\s*whisperx:/m.test(main) || !/^\s*xtts:/m.test(main)) return 'whisperx/xtts roles are not registered in services/workers/main.ts';
  return undefined;
}

export const turn: Benchmark = {
  name: 'turn',
  title: 'text and audio turn end to end on the dev stack, split by stage',
  async run({ quick, root, log }) {
    const dev = await subject('scripts/dev.ts (startDevStack)', () => import('../scripts/dev'));
    for (const p of ['services/orb/main.ts', 'services/workers/main.ts', 'services/seed/main.ts']) {
      if (!existsSync(join(root, p))) throw new NotAvailable(`${p} has not landed`);
    }
    const noSpeech = speechLanded(root);
    const tail: string[] = [];
    const t0 = Date.now();
    const stack = await dev.startDevStack({
      orbPorts: [0],
      speech: !noSpeech,
      keyPrefix: '',
      // Load shedding off: on a shared machine a stall should show as latency here, not as a 503.
      env: { LOG_LEVEL: 'warn', ORB_MAX_EVENT_LOOP_DELAY_MS: '0', ORB_TURN_DEADLINE_MS: '15000' },
      log: (name, line) => { tail.push(`${name} | ${line}`); if (tail.length > 200) tail.shift(); },
      readyTimeoutMs: 180_000,
    }).catch((err: Error) => { throw new Error(`dev stack did not start: ${err.message.split('\n').slice(0, 6).join(' / ')}`); });
    const startupS = (Date.now() - t0) / 1000;
    log(`dev stack up in ${startupS.toFixed(1)} s${noSpeech ? ` (no speech workers: ${noSpeech})` : ''}`);
    try {
      const url = stack.orbUrls[0];
      const auth = { authorization: `Bearer ${stack.apiKey}` };
      const created = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      const sid = ((await created.json()) as { id: string }).id;
      const wav = readFileSync(join(root, 'test/fixtures/speech-16k.wav'));

      let speak = true;
      const runTurn = async (kind: 'text' | 'audio') => {
        const sentAt = Date.now();
        const res = kind === 'text'
          ? await fetch(`${url}/v1/turns`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ session: sid, text: 'what time is it in the orb', speak: false }) })
          : await fetch(`${url}/v1/turns?session=${sid}&speak=${speak}`, { method: 'POST', headers: { ...auth, 'content-type': 'audio/wav' }, body: wav });
        const body = (await res.json()) as { outcome?: string; events?: Ev[]; message?: string };
        const receivedAt = Date.now();
        if (res.status !== 200) throw new Error(`${kind} turn answered ${res.status}: ${body.message ?? JSON.stringify(body).slice(0, 200)}`);
        if (body.outcome !== 'ok') throw new Error(`${kind} turn outcome ${body.outcome}: ${JSON.stringify(body.events?.map((e) => e.type))}`);
        return stagesOf(sentAt, receivedAt, body.events ?? []);
      };
      const plainGet = async () => ({ total: await timed(async () => { const r = await fetch(`${url}/v1/sessions/${sid}?limit=1`, { headers: auth }); await r.arrayBuffer(); }) });

      await runTurn('text'); // warm-up: first turn loads lazy paths in every process
      // A failing audio path must not take the text figures with it: it is reported on its own row.
      let audioProblem = noSpeech;
      let spokenProblem: string | undefined;
      if (!audioProblem) {
        const why = (err: Error) => err.message.split('\n')[0].replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 160);
        spokenProblem = await runTurn('audio').then(() => undefined, why);
        if (spokenProblem) {
          // Measure the speech-in half (ASR -> cores -> CALI) when the spoken reply does not come back.
          log(`spoken audio turn failed (${spokenProblem}); measuring audio turns with a text reply`);
          speak = false;
          audioProblem = await runTurn('audio').then(() => undefined, (err: Error) => `audio turn failed: ${why(err)}`);
        }
      }
      const rounds = quick ? 2 : 6;
      const arms = [
        { name: 'get', round: plainGet },
        { name: 'text', round: () => runTurn('text') },
        ...(audioProblem ? [] : [{ name: 'audio', round: () => runTurn('audio') }]),
      ];
      const r = await interleave<Record<string, number>>(rounds, arms);
      const med = (xs: Record<string, number>[], k: string) => median(xs.map((x) => x[k]).filter((v) => v !== undefined));
      const stageFigures = (kind: string, xs: Record<string, number>[]): Figure[] => {
        const total = med(xs, 'total');
        return Object.keys(xs[0]).filter((k) => k !== 'total').map((k) => figure({
          metric: `${kind} turn stage ${k} (share of turn)`, unit: 'ms', better: 'lower',
          subjectLabel: k, subject: med(xs, k), baselineLabel: `${kind} turn total`, baseline: total,
        }));
      };
      const figures: Figure[] = [
        figure({ metric: 'text turn end to end, median', unit: 'ms', better: 'lower', subjectLabel: 'text turn', subject: med(r.text, 'total'), baselineLabel: 'GET /v1/sessions/:id', baseline: med(r.get, 'total') }),
        ...stageFigures('text', r.text),
      ];
      // The tail needs more samples than the stage split: a separate, still interleaved, text-only run.
      const tailRounds = quick ? 10 : 60;
      const t = await interleave<Record<string, number>>(tailRounds, [
        { name: 'get', round: plainGet },
        { name: 'text', round: () => runTurn('text') },
      ]);
      const p95 = (xs: Record<string, number>[]) => percentile(xs.map((x) => x.total), 95);
      figures.push(figure({ metric: `text turn end to end, p95 of ${tailRounds}`, unit: 'ms', better: 'lower', subjectLabel: 'text turn', subject: p95(t.text), baselineLabel: 'GET /v1/sessions/:id', baseline: p95(t.get) }));
      if (r.audio) {
        figures.push(figure({ metric: speak ? 'audio turn end to end (spoken reply), median' : `audio turn end to end (text reply only; spoken reply failed: ${spokenProblem}), median`, unit: 'ms', better: 'lower', subjectLabel: 'audio turn', subject: med(r.audio, 'total'), baselineLabel: 'text turn', baseline: med(r.text, 'total') }));
        figures.push(...stageFigures('audio', r.audio));
      }
      for (const [k, v] of Object.entries(r)) log(`${k}: ${v.map((x) => x.total.toFixed(0)).join('/')} ms`);
      if (audioProblem) figures.push(figure({ metric: `audio turn: not available (${audioProblem})`, unit: 'ms', better: 'lower', subjectLabel: 'audio turn', subject: NaN, baselineLabel: 'text turn', baseline: med(r.text, 'total') }));
      return { figures, details: { rounds, startupS, samples: r, speech: !noSpeech, spokenReply: speak, spokenProblem, audioProblem } };
    } catch (err) {
      (err as Error).message += `\n${tail.slice(-20).join('\n')}`;
      throw err;
    } finally {
      await stack.stop();
    }
  },
};
