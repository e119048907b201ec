/**
 * `orb smoke`: the checks a fresh deployment must pass — health, identity, a text turn, an audio
 * turn, and resume after a dropped connection with every event exactly once. One line per step;
 * the orb-smoke Job's log is this output.
 */
import { OrbTarget, orbRequest } from './http';
import { OrbEvent, WsFactory } from '../client/session-client';
import { runTurn } from './turn';

export interface SmokeOptions {
  readonly target: OrbTarget;
  readonly urls: readonly string[];
  readonly wsUrls: readonly string[];
  readonly connect: WsFactory;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
  /** PCM16LE 16 kHz mono for the audio turn. */
  readonly utterance: Buffer;
  /** Also require spoken reply audio (xtts) in the audio turn. @default false */
  readonly speak?: boolean;
}

/** Finds a reply text anywhere in a turn body (REST answers carry the whole turn). */
function findReply(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.reply === 'string') return b.reply;
  if (b.reply && typeof b.reply === 'object' && typeof (b.reply as { text?: unknown }).text === 'string')
    return (b.reply as { text: string }).text;
  if (Array.isArray(b.events)) {
    const ev = (b.events as OrbEvent[]).find((e) => e.type === 'reply');
    const data = ev?.data as { text?: string } | undefined;
    if (typeof data?.text === 'string') return data.text;
  }
  return undefined;
}

/** Seqs must be strictly increasing by one: no gap and no duplicate across the reconnect. */
export function seqProblems(events: readonly OrbEvent[]): string[] {
  const problems: string[] = [];
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1].seq,
      b = events[i].seq;
    if (b === a) problems.push(`duplicate seq ${b}`);
    else if (b !== a + 1) problems.push(`gap ${a} -> ${b}`);
  }
  return problems;
}

export async function runSmoke(o: SmokeOptions): Promise<boolean> {
  let failed = 0;
  const step = async (name: string, fn: () => Promise<string>): Promise<void> => {
    const t0 = Date.now();
    try {
      const detail = await fn();
      o.log(`PASS  ${name.padEnd(10)} ${String(Date.now() - t0).padStart(5)} ms  ${detail}`);
    } catch (err) {
      failed++;
      o.log(`FAIL  ${name.padEnd(10)} ${String(Date.now() - t0).padStart(5)} ms  ${(err as Error).message}`);
    }
  };

  await step('health', async () => {
    const out: string[] = [];
    for (const url of o.urls) {
      const t = { ...o.target, url };
      await orbRequest(t, 'GET', '/livez', undefined, { auth: false });
      await orbRequest(t, 'GET', '/readyz', undefined, { auth: false });
      out.push(url);
    }
    const reps = await orbRequest<unknown>(o.target, 'GET', '/v1/replicas');
    const list = Array.isArray(reps.body) ? reps.body : ((reps.body as { replicas?: unknown[] }).replicas ?? []);
    if (!list.length) throw new Error('GET /v1/replicas lists no live replica');
    return `livez+readyz ok on ${out.join(', ')}; ${list.length} live replica(s)`;
  });

  await step('identity', async () => {
    const res = await orbRequest<Record<string, unknown>>(o.target, 'GET', '/v1/identity');
    const b = res.body ?? {};
    const version = b.version ?? (b.identity as Record<string, unknown> | undefined)?.version;
    if (version === undefined) throw new Error(`identity has no version: ${JSON.stringify(b).slice(0, 200)}`);
    const doc = (b.document ?? b.identity ?? b) as Record<string, unknown>;
    const name = doc.name ?? doc.id ?? '';
    return `version ${version}${name ? ` (${name})` : ''}`;
  });

  await step('text turn', async () => {
    const res = await orbRequest<unknown>(o.target, 'POST', '/v1/turns', { text: 'Hello ORB, this is the smoke test.' });
    const reply = findReply(res.body);
    if (!reply) throw new Error(`no reply in ${JSON.stringify(res.body).slice(0, 300)}`);
    return `reply: ${reply.slice(0, 80)}`;
  });

  await step('audio turn', async () => {
    const r = await runTurn({ urls: o.wsUrls, connect: o.connect, pcm: o.utterance, timeoutMs: o.timeoutMs, speak: !!o.speak });
    if (r.outcome !== 'ok') throw new Error(`turn ${r.outcome}: ${r.error ?? ''}`);
    if (r.transcript === undefined) throw new Error('no transcript event');
    if (!r.reply) throw new Error('no reply event');
    if (o.speak && !r.audio.length) throw new Error('no reply audio');
    return `transcript "${r.transcript.slice(0, 40)}", ${r.verdicts.length} verdicts, reply "${r.reply.slice(0, 40)}"${o.speak ? `, ${r.audio.length} audio bytes` : ''}`;
  });

  await step('resume', async () => {
    let dropped = false;
    const states: string[] = [];
    const r = await runTurn({
      urls: o.wsUrls,
      connect: o.connect,
      text: 'Please remember that my name is Smoke.',
      speak: !!o.speak,
      timeoutMs: o.timeoutMs,
      onState: (s) => states.push(s),
      // Drop the connection after the first event of the turn: the rest must arrive after resume.
      onEvent: (_ev, session) => {
        if (!dropped) {
          dropped = true;
          session.drop();
        }
      },
    });
    if (!dropped) throw new Error('the turn produced no event to drop the connection after');
    if (!states.includes('reconnecting')) throw new Error('the client never reconnected');
    if (r.outcome !== 'ok') throw new Error(`turn after resume: ${r.outcome} ${r.error ?? ''}`);
    const problems = seqProblems(r.events);
    if (problems.length) throw new Error(`event stream broken across the reconnect: ${problems.join(', ')}`);
    const hist = await orbRequest<unknown>(o.target, 'GET', `/v1/sessions/${r.session}`);
    if (!hist.body) throw new Error('session history empty');
    return `${r.events.length} events (seq ${r.events[0]?.seq}..${r.events.at(-1)?.seq}) once each across a dropped connection`;
  });

  o.log(failed ? `smoke: ${failed} step(s) FAILED` : 'smoke: all steps passed');
  return failed === 0;
}
