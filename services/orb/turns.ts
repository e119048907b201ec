/**
 * Turns through the bus. Text: `startTextTurn` (services/acp) fans out to the cores and CALI.
 * Audio: the utterance is in the vault (`turn:{sid}:{turnId}:audio`, appended as it arrived) and
 * an `asr.transcribe` job points at it. Either way the outcome is read from the session's event
 * stream, up to a deadline; nothing is ever made up when the workers do not answer.
 */
import { ACP_QUEUES } from '../contract';
import type Redis from 'ioredis';
import { createEnvelope, jsonPart, startTextTurn, startTurn } from '../acp';
import { traceMark } from '../acp/trace';
import type { AcpBus, TurnEvent, TurnEventStream, VaultKeys } from '../acp';
import type { OrbMetrics } from './metrics';
import { PCM_CONTENT_TYPE } from './audio';
import { ORB_ERR_TURN_TIMEOUT } from './errors';

export interface TurnResult {
  readonly session: string;
  readonly turn: string;
  readonly outcome: string;
  readonly transcript: string | null;
  readonly reply: unknown;
  readonly events: TurnEvent[];
}

export interface TurnOptions {
  readonly speak?: boolean;
  readonly signal?: AbortSignal;
  readonly traceparent?: string;
}

/** Events that close a turn (docs/acp.md): `turn.end` always comes last. */
const isEnd = (turn: string) => (ev: TurnEvent) => ev.turn === turn && ev.type === 'turn.end';

export class TurnRunner {
  constructor(
    private readonly d: {
      redis: Redis;
      keys: VaultKeys;
      events: TurnEventStream;
      bus: AcpBus;
      metrics: OrbMetrics;
      deadlineMs: number;
      ttlS: number;
      /** Cores each turn fans out to; must match the core4 StatefulSet (ORB_CORES). */
      cores: number;
      /** How long past the deadline to wait for the sweeper's turn.end before ending the turn here. @default 3000 */
      endWaitMs?: number;
    },
  ) {}

  /** Starts a text turn; the caller follows the event stream for its outcome. */
  async startText(session: string, text: string, opts: TurnOptions = {}): Promise<{ turn: string; seq: number; deadlineMs: number }> {
    const t = await startTextTurn(this.d.bus, this.d.events, {
      session,
      text,
      timeoutMs: this.d.deadlineMs,
      cores: this.d.cores,
      speak: opts.speak ?? false,
      traceparent: opts.traceparent,
    });
    return { turn: t.turn, seq: t.seq, deadlineMs: t.deadlineMs };
  }

  /** Appends a chunk of the open utterance; the vault holds everything received so far. */
  async appendAudio(session: string, turn: string, chunk: Buffer): Promise<number> {
    const key = this.d.keys.turnAudio(session, turn);
    const [[err, len]] = (await this.d.redis.multi().append(key, chunk).expire(key, this.d.ttlS).exec()) as [[Error | null, number]];
    if (err) throw err;
    return len;
  }

  async audioBytes(session: string, turn: string): Promise<number> {
    return this.d.redis.strlen(this.d.keys.turnAudio(session, turn));
  }

  async discardAudio(session: string, turn: string): Promise<void> {
    await this.d.redis.del(this.d.keys.turnAudio(session, turn));
  }

  /** Announces an audio turn and sends its utterance (by vault reference) to the ASR workers. */
  async commitAudio(session: string, turn: string, opts: TurnOptions = {}): Promise<{ turn: string; seq: number; deadlineMs: number }> {
    const deadlineMs = Date.now() + this.d.deadlineMs;
    const bytes = await this.audioBytes(session, turn);
    // turn.start and the ASR job are one atomic step: a gateway killed in between leaves neither.
    const { seq } = await startTurn(this.d.bus, this.d.events, {
      session,
      turn,
      deadlineMs,
      start: { source: 'audio', cores: this.d.cores, deadline_ms: deadlineMs, audio_bytes: bytes },
      jobs: [
        {
          queue: ACP_QUEUES.whisperx,
          envelope: createEnvelope({
            id: `${turn}.asr`,
            kind: 'asr.transcribe',
            session,
            turn,
            seq: 0,
            deadlineMs,
            traceparent: opts.traceparent,
            parts: [
              { content_type: PCM_CONTENT_TYPE, content_ref: this.d.keys.turnAudio(session, turn) },
              jsonPart({ speak: opts.speak ?? false, cores: this.d.cores }),
            ],
          }),
        },
      ],
    });
    return { turn, seq, deadlineMs };
  }

  /**
   * Waits for the turn's `turn.end`. Past the deadline the sweeper of some replica writes it
   * (`timeout`); if none did by endWaitMs, this replica ends the turn itself (still once: a later
   * or concurrent end is answered with the first). A timeout answers 504.
   */
  async collect(
    session: string,
    started: { turn: string; seq: number; deadlineMs: number },
    mode: 'text' | 'audio',
    signal?: AbortSignal,
  ): Promise<TurnResult> {
    const endWait = this.d.endWaitMs ?? 3000;
    let deadline = started.deadlineMs;
    let end: TurnEvent | undefined;
    // Every event the tail reads on the way to turn.end: the turn's events without a second read.
    let seen: TurnEvent[] = [];
    const endOf = isEnd(started.turn);
    for (;;) {
      seen = [];
      end = await this.d.events.waitFor(
        session,
        started.seq - 1,
        (ev) => {
          seen.push(ev);
          return endOf(ev);
        },
        { timeoutMs: deadline - Date.now() + endWait, signal },
      );
      if (end) traceMark(started.turn, 'gw.end_seen');
      if (end || signal?.aborted) break;
      // CALI moves the deadline of a spoken turn (xtts gets its own budget): keep waiting for that one.
      const moved = Number(await this.d.redis.hget(this.d.keys.turn(session, started.turn), 'deadline_ms'));
      if (!(moved > deadline)) break;
      deadline = moved;
    }
    const tailed = end !== undefined;
    if (!end && !signal?.aborted) {
      const r = await this.d.events.endTurn(session, { turn: started.turn, data: { outcome: 'timeout', code: 'ORB_ERR_TURN_TIMEOUT' } });
      end = (await this.d.events.read(session, r.seq - 1, 1)).find(isEnd(started.turn));
    }
    const endOutcome = String((end?.data as { outcome?: string } | null | undefined)?.outcome ?? (end ? 'ok' : 'timeout'));
    if (!end || endOutcome === 'timeout') {
      this.d.metrics.turns.inc({ mode, outcome: 'timeout' });
      throw new ORB_ERR_TURN_TIMEOUT(started.turn, this.d.deadlineMs);
    }
    const events = (tailed ? seen : await this.d.events.read(session, started.seq - 1, 10_000)).filter(
      (e) => e.turn === started.turn && e.seq <= end.seq,
    );
    traceMark(started.turn, 'gw.collected');
    const outcome = String((end.data as { outcome?: string } | null)?.outcome ?? 'ok');
    this.d.metrics.turns.inc({ mode, outcome });
    const transcript = events.find((e) => e.type === 'transcript');
    const reply = events.find((e) => e.type === 'reply');
    return {
      session,
      turn: started.turn,
      outcome,
      transcript: (transcript?.data as { text?: string } | null)?.text ?? null,
      reply: reply?.data ?? null,
      events,
    };
  }
}
