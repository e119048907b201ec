/**
 * Role `cali`: for each `cali.turn` job, collects the cores' verdicts from the turn's event
 * stream until every core answered, or quorum + a short grace, or the vote deadline; votes
 * (confidence-weighted, ties to the +1 core); picks the strategy; updates the session memory;
 * emits `reply` (and `turn.end` unless xtts will speak it) — or `turn.no_quorum`. For spoken turns
 * CALI itself queues the `tts.speak` job: its own job is at-least-once, so the hand-off to xtts
 * survives the loss of any gateway replica (the job id `<turn>.tts` keeps redeliveries to one).
 */
import { ACP_QUEUES, coreQueue } from '../../contract';
import { Counter, Histogram } from 'prom-client';
import {
  CaliTurnSpec,
  ConsumerLiveness,
  createEnvelope,
  Job,
  JobRejectedError,
  jsonPart,
  partContent,
  textPart,
  TurnEventStream,
} from '../../acp';
import { loadEnv } from '../../config/env';
import { CALI_ENV } from '../../config/cali';
import { readIdentity } from '../../seed/identity';
import { RoleFactory, WorkerRole } from '../runtime';
import { traceMark } from '../../acp/trace';
import { chatReply } from './chat';
import { aggregateVerdicts, CoreVerdict } from './quorum';
import { extractMemory, IdentityView, memoryFromHash, strategyFor, synthesizeReply } from './reply';

/** Shown when the seed Job has not run: the reply stays honest about it. */
const UNSEEDED: IdentityView = { name: 'ORB', version: '0' };

function isVerdict(v: unknown, cores: number): v is CoreVerdict {
  const x = v as CoreVerdict;
  return (
    !!x && typeof x.label === 'string' && typeof x.confidence === 'number' && Number.isInteger(x.core) && x.core >= 0 && x.core < cores
  );
}

function parseSpec(job: Job): CaliTurnSpec {
  const spec = partContent<CaliTurnSpec>(job.envelope, 'application/json');
  if (
    !spec ||
    typeof spec.text !== 'string' ||
    !Number.isInteger(spec.cores) ||
    spec.cores < 1 ||
    typeof spec.vote_deadline_ms !== 'number'
  ) {
    throw new JobRejectedError('cali.turn needs an application/json part {text, cores, speak, vote_deadline_ms}');
  }
  return spec;
}

/** Can the missing verdicts still come? Resolves false once too few cores are alive for quorum. */
export type QuorumWatch = (voted: ReadonlySet<number>) => Promise<boolean>;

/** A QuorumWatch over the cores' liveness heartbeats: a core never seen beating counts as alive. */
export function heartbeatQuorumWatch(liveness: ConsumerLiveness, cores: number, quorum: number): QuorumWatch {
  const queues = Array.from({ length: cores }, (_, n) => coreQueue(n));
  return async (voted) => {
    const status = await liveness.status(queues);
    const possible = status.filter((alive, n) => voted.has(n) || alive !== false).length;
    return possible >= quorum;
  };
}

export interface CollectedVerdicts {
  readonly verdicts: CoreVerdict[];
  /** True when the vote closed early because the heartbeats showed quorum cannot be reached. */
  readonly quorumLost: boolean;
}

/**
 * Verdicts for the job's turn after its seq: all cores, or quorum + grace, or the vote deadline,
 * or (with `watch`) as soon as the cores' heartbeats show that quorum cannot be reached.
 */
export async function collectVerdicts(
  events: TurnEventStream,
  job: Job,
  spec: CaliTurnSpec,
  quorum: number,
  graceMs: number,
  watch?: { check: QuorumWatch; everyMs: number },
): Promise<CollectedVerdicts> {
  const env = job.envelope;
  const verdicts = new Map<number, CoreVerdict>();
  const ac = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number) => {
    const t = setTimeout(() => ac.abort(), Math.max(0, ms));
    t.unref();
    timers.push(t);
  };
  after(spec.vote_deadline_ms - Date.now());
  const onHard = () => ac.abort();
  job.signal.addEventListener('abort', onHard, { once: true });
  let quorumLost = false;
  let watching = true;
  const watchLoop = (async () => {
    if (!watch || watch.everyMs <= 0) return;
    while (watching && !ac.signal.aborted) {
      const ok = await watch.check(new Set(verdicts.keys())).catch(() => true); // unreadable heartbeats: keep waiting
      if (!ok && verdicts.size < quorum && watching) {
        quorumLost = true;
        ac.abort();
        return;
      }
      await new Promise<void>((r) => {
        // The vote may have closed while the check was in flight: an abort listener added now would
        // never fire, and closing the vote (which awaits this loop) would wait a whole period.
        if (ac.signal.aborted) return r();
        const done = () => {
          clearTimeout(t);
          ac.signal.removeEventListener('abort', done);
          r();
        };
        const t = setTimeout(done, watch.everyMs);
        t.unref();
        ac.signal.addEventListener('abort', done, { once: true });
      });
    }
  })();
  try {
    for await (const ev of events.tail(env.session, env.seq ?? 0, { signal: ac.signal })) {
      if (ev.turn !== env.turn || ev.type !== 'verdict' || !isVerdict(ev.data, spec.cores)) continue;
      verdicts.set(ev.data.core, ev.data);
      traceMark(env.turn, `cali.got.core:${ev.data.core}`);
      if (verdicts.size >= spec.cores) break;
      if (verdicts.size === quorum) after(graceMs);
    }
  } finally {
    watching = false;
    ac.abort();
    await watchLoop;
    timers.forEach(clearTimeout);
    job.signal.removeEventListener('abort', onHard);
  }
  return { verdicts: [...verdicts.values()].sort((a, b) => a.core - b.core), quorumLost: quorumLost && verdicts.size < quorum };
}

export const caliRole: RoleFactory = (ctx) => {
  const cfg = loadEnv(CALI_ENV, ctx.env);
  if (cfg.quorum > cfg.cores) throw new Error(`CALI_QUORUM (${cfg.quorum}) must be at most CALI_CORES (${cfg.cores})`);
  const registers = [ctx.metrics];
  const consensus = new Histogram({
    name: 'cali_consensus_ratio',
    help: 'Fraction of answering cores that agree with the chosen verdict',
    registers,
    buckets: [0.2, 0.34, 0.4, 0.5, 0.6, 0.67, 0.75, 0.8, 1],
  });
  const received = new Histogram({
    name: 'cali_verdicts_received',
    help: 'Verdicts in hand when the vote closed',
    registers,
    buckets: [0, 1, 2, 3, 4, 5, 6, 8],
  });
  const turns = new Counter({
    name: 'cali_turns_total',
    help: 'Turns by outcome and strategy',
    labelNames: ['outcome', 'strategy'],
    registers,
  });
  const ties = new Counter({ name: 'cali_ties_total', help: 'Votes decided by a tie rule', labelNames: ['decided_by'], registers });
  const chat = cfg.chatUrl ? { url: cfg.chatUrl, model: cfg.chatModel, apiKey: cfg.chatApiKey, timeoutMs: cfg.chatTimeoutMs } : undefined;
  const { redis, acp } = ctx;
  const liveness = new ConsumerLiveness(redis, acp.keys);
  let warnedUnseeded = false;

  const role: WorkerRole = {
    name: 'cali',
    queue: ACP_QUEUES.cali,
    async load() {
      const id = await readIdentity(redis, acp.keys).catch(() => undefined);
      ctx.log.info(
        { identity: id ? `${id.name} ${id.version}` : 'not seeded', quorum: cfg.quorum, cores: cfg.cores, chat: !!chat },
        'cali ready',
      );
    },
    async handle(job: Job) {
      if (job.envelope.kind !== 'cali.turn') throw new JobRejectedError(`cali cannot handle kind '${job.envelope.kind}'`);
      const spec = parseSpec(job);
      const quorum = Math.min(spec.quorum ?? cfg.quorum, spec.cores);
      // The identity is seed data, read-only here: fetch it while the cores vote, not after.
      const identityRead = readIdentity(redis, acp.keys).catch(() => undefined);
      const { verdicts, quorumLost } = await collectVerdicts(acp.events, job, spec, quorum, cfg.graceMs, {
        check: heartbeatQuorumWatch(liveness, spec.cores, quorum),
        everyMs: cfg.livenessCheckMs,
      });
      traceMark(job.envelope.turn, 'cali.voted');
      received.observe(verdicts.length);
      if (verdicts.length < quorum) {
        turns.inc({ outcome: 'no_quorum', strategy: 'none' });
        await job.emit('turn.no_quorum', {
          received: verdicts.length,
          quorum,
          cores: spec.cores,
          verdicts,
          reason: quorumLost ? 'cores_down' : 'deadline',
        });
        await job.emit('turn.end', { outcome: 'no_quorum' });
        return;
      }
      const vote = aggregateVerdicts(verdicts, { tieBreakCore: cfg.tieBreakCore });
      consensus.observe(vote.consensus);
      if (vote.tie) ties.inc({ decided_by: vote.decidedBy });
      const strategy = strategyFor(vote.label, spec.text);
      const identity = (await identityRead) ?? UNSEEDED;
      if (identity === UNSEEDED && !warnedUnseeded) {
        warnedUnseeded = true;
        ctx.log.warn('identity:seed missing: has the seed-vault Job run?');
      }
      const memKey = acp.keys.memory(job.envelope.session);
      const update = extractMemory(spec.text);
      // Memory is written before the reply is visible, so the next turn (any replica) sees it. The
      // read goes out right behind the write on the same connection (one round trip, still after it).
      const [, hash] = await Promise.all([
        Object.keys(update.fields).length ? redis.hset(memKey, update.fields) : undefined,
        redis.hgetall(memKey),
      ]);
      const memory = memoryFromHash(hash);
      const offline = synthesizeReply(strategy, spec.text, identity, memory, update);
      const text = chat
        ? ((await chatReply(chat, { text: spec.text, strategy, label: vote.label, identity, memory, fallback: offline })) ?? offline)
        : offline;
      traceMark(job.envelope.turn, 'cali.composed');
      // A text-only turn ends with its reply: both appends go out back to back on the one connection
      // (one round trip, not two). Redis runs them in order, so turn.end's seq is after the reply's,
      // and each keeps its own dedupe field (e<n>, e<n+1>, taken in call order): a redelivery after a
      // failure appends only what is missing. A failed reply append fails the job (it is retried).
      const replyAppended = job.emit('reply', {
        text,
        strategy,
        label: vote.label,
        confidence: Number(vote.confidence.toFixed(4)),
        consensus: Number(vote.consensus.toFixed(4)),
        tie: vote.tie,
        decided_by: vote.decidedBy,
        verdicts,
        identity: { name: identity.name, version: identity.version },
      });
      if (!spec.speak) {
        await Promise.all([replyAppended, job.emit('turn.end', { outcome: 'ok' })]);
        turns.inc({ outcome: 'reply', strategy });
        return;
      }
      const replySeq = await replyAppended;
      turns.inc({ outcome: 'reply', strategy });
      const env = job.envelope;
      // Speaking starts only now: give it at least cfg.speakBudgetMs even when the turn deadline is near,
      // and move the turn's deadline with it so the sweeper does not end a turn xtts is still speaking.
      const speakDeadline = Math.max(env.deadline_ms, Date.now() + cfg.speakBudgetMs);
      await acp.events.extendTurn(env.session, env.turn, speakDeadline);
      await acp.bus.publish(
        ACP_QUEUES.xtts,
        createEnvelope({
          id: `${env.turn}.tts`,
          kind: 'tts.speak',
          session: env.session,
          turn: env.turn,
          seq: replySeq,
          deadlineMs: speakDeadline,
          ...(env.traceparent !== undefined ? { traceparent: env.traceparent } : {}),
          parts: [textPart(text), jsonPart({ end_turn: true })],
        }),
      );
    },
    async dispose() {},
  };
  return role;
};
