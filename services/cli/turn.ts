/**
 * One turn over the WebSocket, collected: the events in seq order, the reply audio, and the
 * times each stage arrived (used by `orb ask`, `orb smoke` and the latency measurement).
 */
import { OrbEvent, OrbSession, WsFactory } from '../client/session-client';

export interface TurnResult {
  readonly session: string;
  readonly turn: string;
  readonly events: OrbEvent[];
  readonly transcript?: string;
  readonly verdicts: Array<{ label: string; confidence: number; core: number | string }>;
  readonly consensus?: unknown;
  readonly reply?: string;
  /** PCM16LE mono of the reply audio, concatenated in order. */
  readonly audio: Buffer;
  readonly audioSampleRate: number;
  /** Client-side arrival time (ms since the turn was sent / the last audio frame was sent) per stage. */
  readonly timings: Partial<Record<'turn.start' | 'transcript' | 'quorum' | 'reply' | 'first_audio' | 'turn.end', number>>;
  readonly outcome: 'ok' | 'no_quorum' | 'error' | 'cancelled';
  /** `error` messages the gateway sent on the socket. */
  readonly error?: string;
}

const d = (ev: OrbEvent): Record<string, unknown> => (ev.data && typeof ev.data === 'object' ? (ev.data as Record<string, unknown>) : {});

/** Text of an event, whichever field the producer used. */
export function eventText(ev: OrbEvent): string | undefined {
  const x = d(ev);
  for (const k of ['text', 'transcript', 'reply']) if (typeof x[k] === 'string') return x[k] as string;
  return typeof ev.data === 'string' ? ev.data : undefined;
}

/** Base64 PCM carried by an `audio` event, when audio travels inside JSON events. */
export function eventAudio(ev: OrbEvent): { pcm: Buffer; sampleRate?: number } | undefined {
  const x = d(ev);
  for (const k of ['data', 'audio', 'content', 'pcm', 'chunk']) {
    if (typeof x[k] === 'string') {
      // docs/acp.md: `{ index, content_type: 'audio/pcm;rate=N', data (base64), final }`.
      const fromType = /rate=(\d+)/.exec(String(x.content_type ?? ''))?.[1];
      const rate = Number(fromType ?? x.sample_rate ?? x.sampleRate ?? x.rate);
      return { pcm: Buffer.from(x[k] as string, 'base64'), sampleRate: Number.isFinite(rate) && rate > 0 ? rate : undefined };
    }
  }
  return undefined;
}

export function isTurnEnd(ev: OrbEvent): boolean {
  // docs/acp.md: turn.end always closes a turn, after turn.no_quorum / a fatal turn.error too.
  return ev.type === 'turn.end';
}

export interface RunTurnOptions {
  readonly urls: readonly string[];
  readonly connect: WsFactory;
  readonly sessionId?: string;
  /** A typed turn… */
  readonly text?: string;
  /** …or PCM16LE 16 kHz mono audio, streamed in real-time-sized frames. */
  readonly pcm?: Uint8Array;
  /** Frame size in bytes. @default 640 (20 ms) */
  readonly frameBytes?: number;
  /** Pace frames at real time (true) or send them back to back. @default false */
  readonly realtime?: boolean;
  readonly timeoutMs?: number;
  /** Ask for reply audio (xtts). @default - the gateway's default (no audio) */
  readonly speak?: boolean;
  /** Last seq already seen when continuing a session. */
  readonly lastSeq?: number;
  /** Called on every event of the turn (e.g. to kill a replica mid-turn in a drill). */
  readonly onEvent?: (ev: OrbEvent, session: OrbSession) => void;
  readonly onState?: (state: string, detail?: string) => void;
}

/** Runs one turn on a session (new or resumed) and resolves when the turn ends. */
export async function runTurn(o: RunTurnOptions): Promise<TurnResult & { lastSeq: number }> {
  const events: OrbEvent[] = [];
  const errors: string[] = [];
  const audio: Buffer[] = [];
  let rate = 24_000;
  let t0 = 0;
  const timings: Record<string, number> = {};
  const mark = (k: string) => {
    if (timings[k] === undefined) timings[k] = Date.now() - t0;
  };
  let done!: (ev: OrbEvent) => void;
  const ended = new Promise<OrbEvent>((r) => {
    done = r;
  });
  let turnId: string | undefined;
  let verdictCount = 0;
  // Events may come before the ack that names our turn (and a resumed session replays older
  // turns), so events wait here until the turn id is known.
  const early: OrbEvent[] = [];
  let session!: OrbSession;

  const consider = (ev: OrbEvent): void => {
    events.push(ev);
    o.onEvent?.(ev, session);
    if (ev.type === 'turn.start') mark('turn.start');
    if (ev.type === 'transcript') mark('transcript');
    if (ev.type === 'verdict' && ++verdictCount === 3) mark('quorum');
    if (ev.type === 'reply') mark('reply');
    if (ev.type === 'audio') {
      const a = eventAudio(ev);
      if (a) {
        audio.push(a.pcm);
        if (a.sampleRate) rate = a.sampleRate;
        mark('first_audio');
      }
    }
    if (isTurnEnd(ev)) {
      mark('turn.end');
      done(ev);
    }
    // A fatal turn.error should be followed by turn.end; if that never comes, the error still ends the turn.
    if (ev.type === 'turn.error') setTimeout(() => done(ev), 2000).unref();
  };

  session = new OrbSession({
    urls: o.urls,
    connect: o.connect,
    sessionId: o.sessionId,
    lastSeq: o.lastSeq,
    // A file is one whole utterance: the client commits it, the gateway's VAD is not asked to.
    query: { ...(o.speak === undefined ? {} : { speak: String(o.speak) }), ...(o.pcm ? { vad: 'false' } : {}) },
    onState: o.onState,
    onEvent: (ev) => {
      if (ev.type === 'turn.accepted' || ev.type === 'input_audio.committed') {
        turnId ??= String(ev.turn);
        for (const e of early.splice(0)) if (e.turn === turnId) consider(e);
        return;
      }
      if (ev.type === 'error') {
        errors.push(`${String(ev.code)}: ${String(ev.message)}`);
        return;
      }
      if (typeof ev.seq !== 'number') return;
      if (!turnId) {
        early.push(ev);
        return;
      }
      if (ev.turn === turnId) consider(ev);
    },
    onBinary: (bytes) => {
      audio.push(Buffer.from(bytes));
      mark('first_audio');
    },
  });
  await session.open();
  t0 = Date.now();
  if (o.text !== undefined) {
    session.sendText(o.text);
  } else if (o.pcm) {
    const step = o.frameBytes ?? 640;
    for (let i = 0; i < o.pcm.byteLength; i += step) {
      await session.whenReady();
      session.sendAudio(o.pcm.subarray(i, Math.min(i + step, o.pcm.byteLength)));
      if (o.realtime) await new Promise((r) => setTimeout(r, (step / 32_000) * 1000));
      else if ((i / step) % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    session.endUtterance();
    t0 = Date.now();
  } else {
    throw new Error('runTurn needs text or pcm');
  }
  const timeoutMs = o.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const last = await Promise.race([
    ended,
    new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  session.close();
  const verdicts = events
    .filter((e) => e.type === 'verdict')
    .map((e) => d(e) as { label: string; confidence: number; core: number | string });
  const replyEv = events.find((e) => e.type === 'reply');
  const endOutcome = last?.type === 'turn.end' ? String(d(last).outcome ?? 'ok') : undefined;
  const outcome: TurnResult['outcome'] = !last
    ? 'error'
    : endOutcome === 'ok'
      ? 'ok'
      : endOutcome === 'no_quorum' || last.type === 'turn.no_quorum'
        ? 'no_quorum'
        : endOutcome === 'cancelled' || last.type === 'turn.cancelled'
          ? 'cancelled'
          : 'error';
  return {
    session: session.sessionId ?? '',
    turn: turnId ?? replyEv?.turn ?? '',
    events,
    transcript: events
      .filter((e) => e.type === 'transcript')
      .map(eventText)
      .filter(Boolean)
      .pop(),
    verdicts,
    consensus: replyEv ? (d(replyEv).consensus ?? d(replyEv).verdict) : undefined,
    reply: replyEv ? eventText(replyEv) : undefined,
    audio: Buffer.concat(audio),
    audioSampleRate: rate,
    timings,
    outcome,
    error: !last
      ? `turn did not end within ${timeoutMs} ms${errors.length ? ` (${errors.join('; ')})` : ''}`
      : outcome === 'error'
        ? [JSON.stringify(last.data), ...errors].join('; ')
        : undefined,
    lastSeq: session.lastSeq,
  };
}

/** A second of a voiced, vowel-like signal (harmonics under formant bumps) — speech-shaped audio
 *  for smoke turns where no recording is at hand; the point is the pipeline, not the words. */
export function syntheticUtterance(seconds = 1.2, sampleRate = 16_000): Buffer {
  const n = Math.round(seconds * sampleRate);
  const out = new Int16Array(n + sampleRate / 2);
  for (let i = 0; i < n; i++) {
    const t = i / sampleRate;
    const f0 = 120 + 20 * Math.sin(2 * Math.PI * 3 * t);
    let s = 0;
    for (let h = 1; h <= 30; h++) {
      const f = f0 * h;
      const formant =
        Math.exp(-(((f - 700) / 200) ** 2)) + 0.6 * Math.exp(-(((f - 1200) / 250) ** 2)) + 0.3 * Math.exp(-(((f - 2600) / 300) ** 2));
      s += (formant * Math.sin(2 * Math.PI * f * t)) / Math.sqrt(h);
    }
    const env = Math.min(1, t / 0.05, (seconds - t) / 0.05) * (0.6 + 0.4 * Math.sin(2 * Math.PI * 4 * t) ** 2);
    out[i] = Math.round(Math.max(-1, Math.min(1, 0.3 * s * env)) * 32767);
  }
  return Buffer.from(out.buffer);
}
