/**
 * The turn helpers the gateway (text turns) and the ASR worker (audio turns) call: announce the
 * turn on its event stream, then fan the transcript out to every core and to CALI with one
 * deadline. The result arrives on the session's event stream (verdict…, reply, turn.end).
 */
import { ACP_QUEUES, coreQueue } from '../contract';
import { randomUUID } from 'node:crypto';
import { AcpBus, asBacklogError } from './bus';
import { AcpEnvelope, createEnvelope, jsonPart, parseEnvelope, textPart } from './envelope';
import { deadlineMember, TurnEventStream } from './events';
import { fcall } from './functions';
import { traceMark } from './trace';

/** What CALI reads from a `cali.turn` job's application/json part. */
export interface CaliTurnSpec {
  readonly text: string;
  /** Cores that were asked (ordinals 0..cores-1). */
  readonly cores: number;
  /** Verdicts needed; fewer by the vote deadline → `turn.no_quorum`. Unset: CALI's configured quorum. */
  readonly quorum?: number;
  /** When true CALI queues `tts.speak` for xtts after the reply, and xtts emits `turn.end`. */
  readonly speak: boolean;
  /** Epoch ms after which CALI stops waiting for verdicts and answers (or reports no quorum). */
  readonly vote_deadline_ms: number;
}

export interface FanOutInput {
  readonly session: string;
  readonly turn: string;
  readonly text: string;
  /** Absolute turn deadline, epoch ms. */
  readonly deadlineMs: number;
  /** Seq to read the turn's events after (CALI collects verdicts from here). */
  readonly afterSeq: number;
  /** @default 5 */
  readonly cores?: number;
  readonly quorum?: number;
  /** @default false */
  readonly speak?: boolean;
  readonly traceparent?: string;
}

export interface FanOutResult {
  readonly coreJobs: string[];
  readonly caliJob: string;
}

/** The jobs of one transcript: `cali.turn` for CALI and `core.classify` for each core (seq set by the caller). */
export function transcriptJobs(input: FanOutInput): { jobs: { queue: string; envelope: AcpEnvelope }[]; result: FanOutResult } {
  const cores = input.cores ?? 5;
  const now = Date.now();
  // CALI must have time to write the reply after the vote closes: keep 20% (≤ 1 s) for it.
  const voteDeadline = input.deadlineMs - Math.min(1000, Math.max(0, Math.floor((input.deadlineMs - now) * 0.2)));
  const base = { session: input.session, turn: input.turn, seq: input.afterSeq, traceparent: input.traceparent };
  const coreJobs = Array.from({ length: cores }, (_, n) => `${input.turn}.core${n}`);
  const caliJob = `${input.turn}.cali`;
  const spec: CaliTurnSpec = {
    text: input.text,
    cores,
    speak: input.speak ?? false,
    vote_deadline_ms: voteDeadline,
    ...(input.quorum !== undefined ? { quorum: input.quorum } : {}),
  };
  // CALI first: it starts listening while the cores work.
  const jobs: Array<{ queue: string; envelope: ReturnType<typeof createEnvelope> }> = [
    {
      queue: ACP_QUEUES.cali,
      envelope: createEnvelope({ ...base, id: caliJob, kind: 'cali.turn', deadlineMs: input.deadlineMs, parts: [jsonPart(spec)] }),
    },
  ];
  for (let n = 0; n < cores; n++) {
    jobs.push({
      queue: coreQueue(n),
      envelope: createEnvelope({
        ...base,
        id: coreJobs[n],
        kind: 'core.classify',
        deadlineMs: voteDeadline,
        parts: [textPart(input.text)],
      }),
    });
  }
  return { jobs, result: { coreJobs, caliJob } };
}

/** Publishes `core.classify` to each core and `cali.turn` to CALI for one transcript, in one atomic step. */
export async function fanOutTranscript(bus: AcpBus, input: FanOutInput): Promise<FanOutResult> {
  const { jobs, result } = transcriptJobs(input);
  await bus.publishMany(jobs);
  return result;
}

export interface StartTurnInput {
  readonly session: string;
  readonly turn: string;
  /** Absolute turn deadline, epoch ms: the sweeper ends the turn as `timeout` after it. */
  readonly deadlineMs: number;
  /** `data` of the turn.start event. */
  readonly start: unknown;
  /** `data` of a transcript event written right after turn.start (text turns). */
  readonly transcript?: unknown;
  /** The turn's first job(s); their envelopes' `seq` becomes the turn.start seq. */
  readonly jobs: readonly { queue: string; envelope: AcpEnvelope }[];
}

/**
 * Writes `turn.start` (and the transcript) and the turn's first jobs in one atomic step
 * (FCALL orb_turn_start), and enters the turn in the deadline index. A refusal (a queue at its
 * cap: ACP_ERR_BACKLOG) is decided before anything is written. Idempotent per turn id.
 */
export async function startTurn(bus: AcpBus, events: TurnEventStream, input: StartTurnInput): Promise<{ seq: number; duplicate: boolean }> {
  const keys = bus.keys;
  const envs = input.jobs.map((j) => {
    const { seq: _seq, ...rest } = parseEnvelope({ ...j.envelope, seq: 0 });
    // The function replaces -1 with the turn.start seq, which only it knows.
    return `{"seq":-1,${JSON.stringify(rest).slice(1)}`;
  });
  await Promise.all(input.jobs.map((j) => bus.ensureGroup(j.queue)));
  traceMark(input.turn, 'gw.fcall');
  try {
    const [seq, dup] = await fcall<[number, number]>(
      bus.redis,
      'orb_turn_start',
      [
        keys.turnSeq(input.session),
        keys.turnEvents(input.session),
        keys.turn(input.session, input.turn),
        keys.turnDeadlines,
        ...input.jobs.map((j) => keys.jobs(j.queue)),
      ],
      [
        events.maxLength,
        events.retention,
        input.turn,
        JSON.stringify(input.start ?? null),
        Date.now(),
        input.transcript === undefined ? '' : JSON.stringify(input.transcript),
        bus.maxBacklog,
        input.deadlineMs,
        deadlineMember(input.session, input.turn),
        events.retention,
        ...envs,
      ],
    );
    traceMark(input.turn, 'gw.started');
    return { seq: Number(seq), duplicate: Number(dup) === 1 };
  } catch (err) {
    throw asBacklogError(err, bus.maxBacklog) ?? err;
  }
}

export interface TextTurnInput {
  readonly session: string;
  /** @default - a random id */
  readonly turn?: string;
  readonly text: string;
  /** Turn budget from now, ms. @default 10000 */
  readonly timeoutMs?: number;
  readonly cores?: number;
  readonly quorum?: number;
  readonly speak?: boolean;
  readonly traceparent?: string;
}

export interface TextTurnStarted {
  readonly turn: string;
  /** Seq of the `turn.start` event: read or tail the session's events after it for the outcome. */
  readonly seq: number;
  readonly deadlineMs: number;
  readonly jobs: FanOutResult;
}

/**
 * Starts a text turn: `turn.start`, `transcript` and the jobs of the cores and CALI in one atomic
 * step. The gateway then follows the session's event stream from `seq` until `turn.end`.
 */
export async function startTextTurn(bus: AcpBus, events: TurnEventStream, input: TextTurnInput): Promise<TextTurnStarted> {
  const turn = input.turn ?? randomUUID();
  traceMark(turn, 'gw.accept');
  const deadlineMs = Date.now() + (input.timeoutMs ?? 10_000);
  const cores = input.cores ?? 5;
  const { jobs, result } = transcriptJobs({
    session: input.session,
    turn,
    text: input.text,
    deadlineMs,
    afterSeq: 0,
    cores,
    quorum: input.quorum,
    speak: input.speak,
    traceparent: input.traceparent,
  });
  const { seq } = await startTurn(bus, events, {
    session: input.session,
    turn,
    deadlineMs,
    jobs,
    start: { source: 'text', cores, deadline_ms: deadlineMs },
    transcript: { text: input.text, final: true, source: 'text' },
  });
  return { turn, seq, deadlineMs, jobs: result };
}
