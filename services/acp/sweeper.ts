/**
 * The turn deadline sweeper. Every started turn sits in `turn:deadlines` (score = its deadline)
 * until its turn.end; a turn still there `graceMs` after its deadline is ended as `timeout` by
 * orb_turn_end, which writes a turn's end once however many replicas sweep at the same moment.
 * Deadlines are thereby enforced by the system, not by whichever client happens to wait: a
 * WebSocket client gets its turn.end even when nobody holds an HTTP request open for it.
 */
import { parseDeadlineMember, TurnEventStream } from './events';
import type { VaultKeys } from './keys';
import type Redis from 'ioredis';

export interface TurnSweeperOptions {
  /** Wait after a turn's deadline before ending it (CALI answers "no quorum" at the deadline). @default 2000 */
  readonly graceMs?: number;
  /** Most turns ended per sweep. @default 200 */
  readonly batch?: number;
}

export class TurnSweeper {
  private readonly graceMs: number;
  private readonly batch: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: VaultKeys,
    private readonly events: TurnEventStream,
    opts: TurnSweeperOptions = {},
  ) {
    this.graceMs = opts.graceMs ?? 2000;
    this.batch = opts.batch ?? 200;
  }

  /** Ends every overdue turn; returns how many this call ended (others may have been ended by another replica). */
  async sweep(now = Date.now()): Promise<number> {
    let ended = 0;
    for (;;) {
      const due = await this.redis.zrangebyscore(this.keys.turnDeadlines, '-inf', now - this.graceMs, 'LIMIT', 0, this.batch);
      for (const member of due) {
        const t = parseDeadlineMember(member);
        if (!t) {
          await this.redis.zrem(this.keys.turnDeadlines, member);
          continue;
        }
        const r = await this.events.endTurn(
          t.session,
          { turn: t.turn, data: { outcome: 'timeout', code: 'ORB_ERR_TURN_TIMEOUT' } },
          { onlyIfStarted: true },
        );
        if (!r.duplicate) ended++;
      }
      if (due.length < this.batch) return ended;
    }
  }

  /** Turns past their deadline and grace that are not ended yet (the invariant tests wait for 0). */
  async overdue(now = Date.now()): Promise<number> {
    return this.redis.zcount(this.keys.turnDeadlines, '-inf', now - this.graceMs);
  }
}
