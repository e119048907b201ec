/**
 * turn: a text turn and an audio turn end to end on the dev stack (scripts/dev.ts: vault, seed,
 * one orb-core, five cores, CALI, whisperx and xtts on CPU with the tiny models), split by stage
 * from the turn's event timestamps (every process runs on this machine, one clock).
 * Baselines in the same run: the text turn against a plain GET /v1/sessions/:id on the same
 * gateway (one vault read), the audio turn against the text turn (what the speech stages add),
 * and every stage as a share of its turn's total.
 * With BENCH_TURN_BASELINE_REF=<git ref> a second dev stack (text turns only, own vault) runs that
 * commit's code, exported with `git archive` to a temporary directory (node_modules linked), and
 * its text turns are interleaved with this tree's: the before/after of a change in one run.
 * Every process of this tree's stack runs with ORB_TRACE=1 (services/acp/trace.ts), and the text
 * turns are also split along their critical path from those marks.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { figure, NotAvailable, type Benchmark, type Figure } from './harness/result';
import { median, percentile } from './harness/stats';
import { subject, timed } from './harness/subject';
import { parseTraceLine, preciseNow, type TraceMark } from '../services/acp/trace';

interface Ev {
  seq: number;
  type: string;
  ts: number;
  data?: Record<string, unknown>;
}

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

/**
 * The critical path of one text turn from the ORB_TRACE marks of every process (one clock):
 * gateway accept -> turn.start FCALL -> the last core's pickup (its wake-up), admission and
 * verdict -> CALI's vote -> reply -> turn.end -> the gateway's tail sees it -> response.
 * Also, off the path: the first core's pickup and CALI's own pickup after the FCALL.
 */
export function traceStages(sentAt: number, receivedAt: number, marks: readonly TraceMark[]): Record<string, number> | undefined {
  const at = new Map<string, number>();
  for (const m of marks) if (!at.has(m.stage)) at.set(m.stage, m.t);
  const cores = [...at.keys()].filter((k) => /^core:\d+\.emitted\.verdict$/.test(k)).map((k) => k.split('.')[0]);
  if (!cores.length) return undefined;
  const last = cores.reduce((a, b) => (at.get(`${b}.emitted.verdict`)! > at.get(`${a}.emitted.verdict`)! ? b : a));
  const pickups = cores.map((c) => at.get(`${c}.pickup`)).filter((t): t is number => t !== undefined);
  const path: Array<[string, number | undefined]> = [
    ['sent', sentAt],
    ['gateway accept', at.get('gw.accept')],
    ['turn.start FCALL sent', at.get('gw.fcall')],
    ['turn.start FCALL answered', at.get('gw.started')],
    ['last core pickup', at.get(`${last}.pickup`)],
    ['last core admitted', at.get(`${last}.admitted`)],
    ['last core classified', at.get(`${last}.classified`)],
    ['last verdict published', at.get(`${last}.emitted.verdict`)],
    ['CALI vote closed', at.get('cali.voted')],
    ['CALI reply composed', at.get('cali.composed')],
    ['reply published', at.get('cali.emitted.reply')],
    ['turn.end published', at.get('cali.emitted.turn.end')],
    ['gateway tail sees turn.end', at.get('gw.end_seen')],
    ['gateway read events', at.get('gw.collected')],
    ['received', receivedAt],
  ];
  if (path.some(([, t]) => t === undefined)) return undefined;
  const out: Record<string, number> = {};
  for (let i = 1; i < path.length; i++) out[`${path[i - 1][0]} -> ${path[i][0]}`] = path[i][1]! - path[i - 1][1]!;
  const fcall = at.get('gw.fcall')!;
  out['(off path) FCALL sent -> first core pickup'] = Math.min(...pickups) - fcall;
  const cali = at.get('cali.pickup');
  if (cali !== undefined) out['(off path) FCALL sent -> CALI pickup'] = cali - fcall;
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

/** The tree of `ref` in a temporary directory with this checkout's node_modules linked in. */
function exportRef(root: string, ref: string): { dir: string; commit: string; remove(): void } {
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', `${ref}^{commit}`], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), `orb-bench-base-${commit}-`));
  execFileSync('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', root, commit, dir]);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return { dir, commit, remove: () => rmSync(dir, { recursive: true, force: true }) };
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
    const marks = new Map<string, TraceMark[]>();
    let baseTurn: (() => Promise<Record<string, number>>) | undefined;
    const t0 = Date.now();
    const stack = await dev
      .startDevStack({
        orbPorts: [0],
        speech: !noSpeech,
        keyPrefix: '',
        // Load shedding off: on a shared machine a stall should show as latency here, not as a 503.
        // ORB_TRACE: every process stamps the stages of each turn (buffered, written off the hot path).
        env: { LOG_LEVEL: 'warn', ORB_MAX_EVENT_LOOP_DELAY_MS: '0', ORB_TURN_DEADLINE_MS: '15000', ORB_TRACE: '1' },
        log: (name, line) => {
          const m = parseTraceLine(line);
          if (m) {
            let l = marks.get(m.turn);
            if (!l) marks.set(m.turn, (l = []));
            l.push(m);
            return;
          }
          tail.push(`${name} | ${line}`);
          if (tail.length > 200) tail.shift();
        },
        readyTimeoutMs: 180_000,
      })
      .catch((err: Error) => {
        throw new Error(`dev stack did not start: ${err.message.split('\n').slice(0, 6).join(' / ')}`);
      });
    const startupS = (Date.now() - t0) / 1000;
    log(`dev stack up in ${startupS.toFixed(1)} s${noSpeech ? ` (no speech workers: ${noSpeech})` : ''}`);
    const baseRef = process.env.BENCH_TURN_BASELINE_REF;
    let base: { url: string; label: string; stop(): Promise<void> } | undefined;
    try {
      if (baseRef) {
        const exported = exportRef(root, baseRef);
        const baseDev = (await import(join(exported.dir, 'scripts/dev.ts'))) as typeof dev;
        const baseStack = await baseDev
          .startDevStack({
            redisUrl: '',
            orbPorts: [0],
            speech: false,
            web: false,
            keyPrefix: '',
            env: { LOG_LEVEL: 'warn', ORB_MAX_EVENT_LOOP_DELAY_MS: '0', ORB_TURN_DEADLINE_MS: '15000' },
            log: (name, line) => {
              tail.push(`base ${name} | ${line}`);
              if (tail.length > 200) tail.shift();
            },
            readyTimeoutMs: 180_000,
          })
          .catch((err: Error) => {
            exported.remove();
            throw new Error(`baseline stack (${baseRef}) did not start: ${err.message.split('\n').slice(0, 6).join(' / ')}`);
          });
        base = {
          url: baseStack.orbUrls[0],
          label: `text turn at ${exported.commit} (${baseRef})`,
          stop: async () => {
            await baseStack.stop();
            exported.remove();
          },
        };
        const key = baseStack.apiKey;
        log(`baseline stack of ${exported.commit} up`);
        const created = await fetch(`${base.url}/v1/sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: '{}',
        });
        const sid = ((await created.json()) as { id: string }).id;
        baseTurn = async () => {
          const sentAt = Date.now();
          const res = await fetch(`${base!.url}/v1/turns`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ session: sid, text: 'what time is it in the orb', speak: false }),
          });
          const body = (await res.json()) as { outcome?: string; events?: Ev[]; message?: string };
          const receivedAt = Date.now();
          if (res.status !== 200 || body.outcome !== 'ok')
            throw new Error(`baseline text turn answered ${res.status} ${body.outcome ?? body.message}`);
          return stagesOf(sentAt, receivedAt, body.events ?? []);
        };
        await baseTurn();
      }
      const url = stack.orbUrls[0];
      const auth = { authorization: `Bearer ${stack.apiKey}` };
      const created = await fetch(`${url}/v1/sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '{}',
      });
      const sid = ((await created.json()) as { id: string }).id;
      const wav = readFileSync(join(root, 'test/fixtures/speech-16k.wav'));

      let speak = true;
      const traced: Array<{ turn: string; sentAt: number; receivedAt: number }> = [];
      const runTurn = async (kind: 'text' | 'audio') => {
        const sentPrecise = preciseNow();
        const sentAt = Date.now();
        const res =
          kind === 'text'
            ? await fetch(`${url}/v1/turns`, {
                method: 'POST',
                headers: { ...auth, 'content-type': 'application/json' },
                body: JSON.stringify({ session: sid, text: 'what time is it in the orb', speak: false }),
              })
            : await fetch(`${url}/v1/turns?session=${sid}&speak=${speak}`, {
                method: 'POST',
                headers: { ...auth, 'content-type': 'audio/wav' },
                body: wav,
              });
        const body = (await res.json()) as { turn?: string; outcome?: string; events?: Ev[]; message?: string };
        const receivedAt = Date.now();
        if (kind === 'text' && body.turn) traced.push({ turn: body.turn, sentAt: sentPrecise, receivedAt: preciseNow() });
        if (res.status !== 200)
          throw new Error(`${kind} turn answered ${res.status}: ${body.message ?? JSON.stringify(body).slice(0, 200)}`);
        if (body.outcome !== 'ok')
          throw new Error(`${kind} turn outcome ${body.outcome}: ${JSON.stringify(body.events?.map((e) => e.type))}`);
        return stagesOf(sentAt, receivedAt, body.events ?? []);
      };
      const plainGet = async () => ({
        total: await timed(async () => {
          const r = await fetch(`${url}/v1/sessions/${sid}?limit=1`, { headers: auth });
          await r.arrayBuffer();
        }),
      });

      await runTurn('text'); // warm-up: first turn loads lazy paths in every process
      // A failing audio path must not take the text figures with it: it is reported on its own row.
      let audioProblem = noSpeech;
      let spokenProblem: string | undefined;
      if (!audioProblem) {
        const why = (err: Error) =>
          err.message
            .split('\n')[0]
            .replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>')
            .slice(0, 160);
        spokenProblem = await runTurn('audio').then(() => undefined, why);
        if (spokenProblem) {
          // Measure the speech-in half (ASR -> cores -> CALI) when the spoken reply does not come back.
          log(`spoken audio turn failed (${spokenProblem}); measuring audio turns with a text reply`);
          speak = false;
          audioProblem = await runTurn('audio').then(
            () => undefined,
            (err: Error) => `audio turn failed: ${why(err)}`,
          );
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
        return Object.keys(xs[0])
          .filter((k) => k !== 'total')
          .map((k) =>
            figure({
              metric: `${kind} turn stage ${k} (share of turn)`,
              unit: 'ms',
              better: 'lower',
              subjectLabel: k,
              subject: med(xs, k),
              baselineLabel: `${kind} turn total`,
              baseline: total,
            }),
          );
      };
      const figures: Figure[] = [
        figure({
          metric: 'text turn end to end, median',
          unit: 'ms',
          better: 'lower',
          subjectLabel: 'text turn',
          subject: med(r.text, 'total'),
          baselineLabel: 'GET /v1/sessions/:id',
          baseline: med(r.get, 'total'),
        }),
        ...stageFigures('text', r.text),
      ];
      // The tail needs more samples than the stage split: a separate, still interleaved, text-only run.
      // 200: a p95 of 60 is the 3rd-worst sample, which one scheduler hiccup on this 2-core machine moves by milliseconds.
      const tailRounds = quick ? 10 : 200;
      const t = await interleave<Record<string, number>>(tailRounds, [
        { name: 'get', round: plainGet },
        { name: 'text', round: () => runTurn('text') },
        ...(baseTurn ? [{ name: 'base', round: baseTurn }] : []),
      ]);
      const p95 = (xs: Record<string, number>[]) =>
        percentile(
          xs.map((x) => x.total),
          95,
        );
      figures.push(
        figure({
          metric: `text turn end to end, p50 of ${tailRounds}`,
          unit: 'ms',
          better: 'lower',
          subjectLabel: 'text turn',
          subject: med(t.text, 'total'),
          baselineLabel: 'GET /v1/sessions/:id',
          baseline: med(t.get, 'total'),
        }),
      );
      figures.push(
        figure({
          metric: `text turn end to end, p95 of ${tailRounds}`,
          unit: 'ms',
          better: 'lower',
          subjectLabel: 'text turn',
          subject: p95(t.text),
          baselineLabel: 'GET /v1/sessions/:id',
          baseline: p95(t.get),
        }),
      );
      if (base && t.base) {
        figures.push(
          figure({
            metric: `text turn end to end, p50 of ${tailRounds}, vs the baseline commit`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'text turn (this tree)',
            subject: med(t.text, 'total'),
            baselineLabel: base.label,
            baseline: med(t.base, 'total'),
          }),
        );
        figures.push(
          figure({
            metric: `text turn end to end, p95 of ${tailRounds}, vs the baseline commit`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'text turn (this tree)',
            subject: p95(t.text),
            baselineLabel: base.label,
            baseline: p95(t.base),
          }),
        );
      }
      // The ORB_TRACE breakdown of every measured text turn (the warm-up's marks are dropped).
      await new Promise((r) => setTimeout(r, 300)); // the processes flush their marks every 50 ms
      const trace: Record<string, { p50: number; p95: number }> = {};
      const breakdowns = traced
        .slice(1)
        .map((x) => traceStages(x.sentAt, x.receivedAt, marks.get(x.turn) ?? []))
        .filter((b): b is Record<string, number> => !!b);
      if (breakdowns.length) {
        const total = med(breakdowns, 'total');
        for (const k of Object.keys(breakdowns[0]).filter((k) => k !== 'total')) {
          figures.push(
            figure({
              metric: `text turn trace: ${k} (median of ${breakdowns.length}, share of turn)`,
              unit: 'ms',
              better: 'lower',
              subjectLabel: k,
              subject: med(breakdowns, k),
              baselineLabel: 'traced text turn total',
              baseline: total,
            }),
          );
        }
        for (const k of Object.keys(breakdowns[0])) {
          trace[k] = {
            p50: med(breakdowns, k),
            p95: percentile(
              breakdowns.map((b) => b[k]),
              95,
            ),
          };
          log(`trace ${k}: p50 ${trace[k].p50.toFixed(2)} p95 ${trace[k].p95.toFixed(2)} ms`);
        }
      } else {
        log(`no complete ORB_TRACE breakdown among ${traced.length} text turns (${marks.size} turns marked)`);
      }
      if (r.audio) {
        figures.push(
          figure({
            metric: speak
              ? 'audio turn end to end (spoken reply), median'
              : `audio turn end to end (text reply only; spoken reply failed: ${spokenProblem}), median`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'audio turn',
            subject: med(r.audio, 'total'),
            baselineLabel: 'text turn',
            baseline: med(r.text, 'total'),
          }),
        );
        figures.push(...stageFigures('audio', r.audio));
      }
      for (const [k, v] of Object.entries(r)) log(`${k}: ${v.map((x) => x.total.toFixed(0)).join('/')} ms`);
      if (audioProblem)
        figures.push(
          figure({
            metric: `audio turn: not available (${audioProblem})`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'audio turn',
            subject: NaN,
            baselineLabel: 'text turn',
            baseline: med(r.text, 'total'),
          }),
        );
      return {
        figures,
        details: {
          rounds,
          startupS,
          samples: r,
          tailSamples: t,
          trace,
          baselineRef: baseRef,
          speech: !noSpeech,
          spokenReply: speak,
          spokenProblem,
          audioProblem,
        },
      };
    } catch (err) {
      (err as Error).message += `\n${tail.slice(-20).join('\n')}`;
      throw err;
    } finally {
      await base?.stop().catch(() => undefined);
      await stack.stop();
    }
  },
};
