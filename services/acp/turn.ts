/**
 * The turn helpers the gateway (text turns) and the ASR worker (audio turns) call: announce the
 * turn on its event stream, then fan the transcript out to every core and to CALI with one
 * deadline. The result arrives on the session's event stream (verdict…, reply, turn.end).
 */
import { randomUUID } from 'node:crypto';
import { AcpBus } from './bus';
import { createEnvelope, jsonPart, textPart } from './envelope';
import { TurnEventStream } from './events';

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

/** Publishes `core.classify` to each core and `cali.turn` to CALI for one transcript. */
export async function fanOutTranscript(bus: AcpBus, input: FanOutInput): Promise<FanOutResult> {
  const cores = input.cores ?? 5;
  const now = Date.now();
  // CALI must have time to write the reply after the vote closes: keep 20% (≤ 1 s) for it.
  const voteDeadline = input.deadlineMs - Math.min(1000, Math.max(0, Math.floor((input.deadlineMs - now) * 0.2)));
  const base = { session: input.session, turn: input.turn, seq: input.afterSeq, traceparent: input.traceparent };
  const coreJobs = Array.from({ length: cores }, (_, n) => `${input.turn}.core${n}`);
  const caliJob = `${input.turn}.cali`;
  const spec: CaliTurnSpec = {
    text: input.text, cores, speak: input.speak ?? false, vote_deadline_ms: voteDeadline,
    ...(input.quorum !== undefined ? { quorum: input.quorum } : {}),
  };
  // CALI first: it starts listening while the cores work.
  await bus.publish('cali', createEnvelope({ ...base, id: caliJob, kind: 'cali.turn', deadlineMs: input.deadlineMs, parts: [jsonPart(spec)] }));
  await bus.publishToCores(cores, (n) => createEnvelope({
    ...base, id: coreJobs[n], kind: 'core.classify', deadlineMs: voteDeadline, parts: [textPart(input.text)],
  }));
  return { coreJobs, caliJob };
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
 * Starts a text turn: appends `turn.start` and `transcript`, then fans out to the cores and CALI.
 * The gateway then follows the session's event stream from `seq` until `turn.end`.
 */
export async function startTextTurn(bus: AcpBus, events: TurnEventStream, input: TextTurnInput): Promise<TextTurnStarted> {
  const turn = input.turn ?? randomUUID();
  const deadlineMs = Date.now() + (input.timeoutMs ?? 10_000);
  const cores = input.cores ?? 5;
  const { seq } = await events.append(input.session, { type: 'turn.start', turn, data: { source: 'text', cores, deadline_ms: deadlineMs } });
  await events.append(input.session, { type: 'transcript', turn, data: { text: input.text, final: true, source: 'text' } });
  const jobs = await fanOutTranscript(bus, {
    session: input.session, turn, text: input.text, deadlineMs, afterSeq: seq, cores,
    quorum: input.quorum, speak: input.speak, traceparent: input.traceparent,
  });
  return { turn, seq, deadlineMs, jobs };
}
