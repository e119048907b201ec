/**
 * WebSocket `GET /v1/session` (docs/websocket-protocol.md). Every check that can fail (key,
 * session ownership, resume seq, socket cap, draining) runs before the upgrade, so a refused
 * client gets a plain HTTP 4xx/5xx with an ORB_ERR_* code instead of an opened-then-closed socket.
 */
import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import Ajv from 'ajv';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket, RawData } from 'ws';
import type { TurnEvent } from '../acp';
import { checkPcmFrame, SAMPLE_RATE } from './audio';
import { parseSeq } from './routes';
import { SESSION_ID_PATTERN, SessionRecord } from './session-store';
import type { LiveSocket } from './live-sessions';
import { Endpointer } from './endpointing';
import { resumeHint } from './drain';
import * as E from './errors';
import { toOrbError } from './errors';
import { flatUUID } from './ids';
import { IdleClock, type IdleClocked } from './socket-clock';

interface SocketQuery {
  session?: string;
  last_seq?: string;
  speak?: boolean;
  vad?: boolean;
  token?: string;
  ticket?: string;
}

interface SocketContext {
  socketId: string;
  session: SessionRecord | null;
  afterSeq: number;
  lastSeq: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    orbSocket: SocketContext | null;
  }
}

const CLIENT_EVENT_SCHEMA = {
  type: 'object',
  required: ['type'],
  oneOf: [
    { properties: { type: { const: 'ping' }, id: {} }, additionalProperties: false },
    {
      properties: {
        type: { const: 'text' },
        text: { type: 'string', minLength: 1, maxLength: 4000, pattern: '\\S' },
        speak: { type: 'boolean' },
      },
      required: ['text'],
      additionalProperties: false,
    },
    {
      properties: {
        type: { const: 'input_audio.format' },
        encoding: { type: 'string' },
        sample_rate: { type: 'integer' },
        channels: { type: 'integer' },
      },
      required: ['encoding', 'sample_rate', 'channels'],
      additionalProperties: false,
    },
    { properties: { type: { const: 'input_audio.commit' }, speak: { type: 'boolean' } }, additionalProperties: false },
    { properties: { type: { const: 'input_audio.clear' } }, additionalProperties: false },
  ],
} as const;

type ClientEvent =
  | { type: 'ping'; id?: unknown }
  | { type: 'text'; text: string; speak?: boolean }
  | { type: 'input_audio.format'; encoding: string; sample_rate: number; channels: number }
  | { type: 'input_audio.commit'; speak?: boolean }
  | { type: 'input_audio.clear' };

/** Unsent bytes queued for one socket before it is closed as too slow. */
const SLOW_CLIENT_BYTES = 16 * 1024 * 1024;

const validateClientEvent = new Ajv({ allErrors: false, strict: false, coerceTypes: false }).compile<ClientEvent>(CLIENT_EVENT_SCHEMA);

/** A token bucket: `rate` per second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private at = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }
  /** Takes n tokens if there are that many. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
  /** Takes n tokens on credit; returns the ms until the debt is paid (0 when there were enough). */
  reserve(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }
}

/** PCM16 mono 16 kHz: bytes per second of real-time audio. */
const REALTIME_BYTES_PER_S = 32_000;

export const sessionSocketRoute = fp(
  async (app: FastifyInstance) => {
    const { orb } = app;
    app.decorateRequest('orbSocket', null);

    // The global limiter itself (no options: its store and key), so socket turns and HTTP requests share one count.
    const keyBudget = app.createRateLimit();

    // One idle timer and one heartbeat interval for all of this replica's sockets, not two timers per socket.
    const { wsIdleMs, wsPingMs } = app.orb.config;
    const clock = new IdleClock(wsIdleMs);
    // Heartbeat: a socket that has not answered the previous ping by the next one is dead; its lease goes with it.
    // (ws keeps every open socket in `clients` until its 'close', as the per-socket interval ran until then.)
    const heartbeat = setInterval(() => {
      for (const ws of app.websocketServer.clients) (ws as CarryingSocket)[kSession]?.pingTick();
    }, wsPingMs);
    heartbeat.unref();
    app.addHook('onClose', async () => {
      clearInterval(heartbeat);
      clock.close();
    });

    app.get<{ Querystring: SocketQuery }>(
      '/v1/session',
      {
        websocket: true,
        config: { queryToken: true, ticket: true },
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              session: { type: 'string', pattern: SESSION_ID_PATTERN },
              last_seq: { type: 'string', maxLength: 20 },
              speak: { type: 'boolean' },
              vad: { type: 'boolean' },
              token: { type: 'string' },
              ticket: { type: 'string', maxLength: 64 },
            },
          },
        },
        preHandler: async (req: FastifyRequest<{ Querystring: SocketQuery }>, reply) => {
          if (!req.ws) {
            reply.header('upgrade', 'websocket');
            throw new E.ORB_ERR_UPGRADE_REQUIRED('send Connection: Upgrade and Upgrade: websocket');
          }
          if (app.drain.draining) throw new E.ORB_ERR_DRAINING();
          let session: SessionRecord | null = null;
          let lastSeq = 0;
          let afterSeq = 0;
          if (req.query.session) {
            session = (await orb.sessions.get(req.query.session, req.apiKeyId)) ?? null;
            if (!session) throw new E.ORB_ERR_UNKNOWN_SESSION(req.query.session);
            lastSeq = await orb.events.lastSeq(session.id);
            afterSeq = parseSeq(req.query.last_seq, lastSeq, 'last_seq');
          } else if (req.query.last_seq !== undefined) {
            throw new E.ORB_ERR_BAD_SEQ('last_seq needs a session to resume');
          }
          const socketId = flatUUID();
          if (!(await app.liveSessions.acquire(req.apiKeyId, socketId))) {
            app.metrics.wsRejected.inc({ reason: 'ORB_ERR_TOO_MANY_SOCKETS' });
            throw new E.ORB_ERR_TOO_MANY_SOCKETS(app.orb.config.maxSocketsPerKey);
          }
          req.orbSocket = { socketId, session, afterSeq, lastSeq };
        },
      },
      async (ws, req) => {
        SessionSocket.attach(app, ws, req, keyBudget, clock);
      },
    );
  },
  { fastify: '5.x', name: 'orb-session-socket', dependencies: ['orb-http-routes'] },
);

function rawLength(data: RawData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
}

/** A socket error frame's fields, from the same mapper the HTTP error handler uses (errors.ts toOrbError). */
function toClientError(err: unknown): { code: string; statusCode: number; message: string } {
  const e = toOrbError(err instanceof Error ? err : new Error(String(err)));
  return { code: e.code, statusCode: e.statusCode ?? 500, message: e.message };
}

type KeyBudget = ReturnType<FastifyInstance['createRateLimit']>;

/** The SessionSocket a ws carries, so one listener function serves every socket (no closures per socket). */
const kSession = Symbol('orb.sessionSocket');
type CarryingSocket = WebSocket & { [kSession]?: SessionSocket };

function onPong(this: CarryingSocket): void {
  const s = this[kSession];
  if (s) s.alive = true;
}
function onClose(this: CarryingSocket): void {
  this[kSession]?.onClose();
}
function onMessage(this: CarryingSocket, data: RawData, isBinary: boolean): void {
  this[kSession]?.onMessage(data, isBinary);
}

/**
 * One client's WebSocket on this replica: its heartbeat state, place on the idle clock, rates,
 * ordered frame chain, the open utterance and the session's event subscription. Everything an
 * idle socket needs is fields of this one object; what only audio needs (rate bucket, VAD state)
 * is made at the first frame, the listeners are shared functions, and the timers are the route's
 * (one heartbeat interval, one idle clock for all sockets), so an idle socket costs little.
 */
export class SessionSocket implements LiveSocket, IdleClocked {
  readonly id: string;
  readonly keyId: string;
  /** Null until setup has created the session (a resumed one is known from the start). */
  sessionId: string | null;
  /** Highest seq delivered to this client. */
  lastSeq: number;
  alive = true;
  private closed = false;
  private sub: { close(): void } | null = null;
  // This socket's place on the replica's idle clock (socket-clock.ts).
  idleSince = 0;
  idlePrev: IdleClocked | null = null;
  idleNext: IdleClocked | null = null;
  // The buckets start full whenever they are made, so making them at the first message/frame
  // rather than at connect changes nothing but what an idle socket holds.
  private messages: TokenBucket | null = null;
  private audio: TokenBucket | null = null;
  /** Frames are handled strictly in arrival order (audio appends must not reorder); setup runs first on it. */
  private chain: Promise<void> = Promise.resolve();
  private queuedAudio = 0;
  /** What setup needs of the pre-upgrade checks (req.orbSocket, let go once read). */
  private readonly resumed: boolean;
  private readonly afterSeq: number;
  private utterance: { turn: string; bytes: number } | null = null;
  // VAD state (recurrent state, window buffers, tensors: ~6 KiB) is made at the first audio frame.
  private endpointer: Endpointer | null = null;

  static attach(
    app: FastifyInstance,
    ws: WebSocket,
    req: FastifyRequest<{ Querystring: SocketQuery }>,
    keyBudget: KeyBudget,
    clock: IdleClock,
  ): SessionSocket {
    const ctx = req.orbSocket!;
    req.orbSocket = null;
    return new SessionSocket(app, ws as CarryingSocket, req, ctx, keyBudget, clock);
  }

  private constructor(
    private readonly app: FastifyInstance,
    readonly ws: CarryingSocket,
    private readonly req: FastifyRequest<{ Querystring: SocketQuery }>,
    ctx: SocketContext,
    private readonly keyBudget: KeyBudget,
    private readonly clock: IdleClock,
  ) {
    this.id = ctx.socketId;
    this.keyId = req.apiKeyId;
    this.sessionId = ctx.session?.id ?? null;
    this.lastSeq = ctx.afterSeq;
    this.resumed = ctx.session !== null;
    this.afterSeq = ctx.afterSeq;
    app.liveSessions.add(this);
    ws[kSession] = this;
    // Heartbeat (the route's interval pings): a pong marks the socket alive.
    ws.on('pong', onPong);
    // Idle: a client that sends nothing for wsIdleMs gives its slot under the key's socket cap back.
    clock.touch(this);
    ws.on('close', onClose);
    ws.on('message', onMessage);
    // Frames that arrive while the session is being set up wait on the chain too.
    this.chain = this.chain
      .then(() => this.setup())
      .catch((err) => {
        req.log.error({ err }, 'session socket setup failed');
        if (ws.readyState === ws.OPEN) ws.close(E.WS_CLOSE.internalError, 'setup failed');
      });
  }

  private get orb() {
    return this.app.orb;
  }

  pingTick(): void {
    if (!this.alive) {
      this.app.metrics.wsRejected.inc({ reason: 'ping_timeout' });
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  idleTimeout(): void {
    this.app.metrics.wsRejected.inc({ reason: 'idle' });
    this.ws.close(E.WS_CLOSE.idle, `no client frame for ${this.orb.config.wsIdleMs} ms`);
  }

  onClose(): void {
    this.closed = true;
    this.clock.remove(this);
    this.sub?.close();
    void this.app.liveSessions.remove(this);
  }

  onMessage(data: RawData, isBinary: boolean): void {
    const { ws } = this;
    const cfg = this.orb.config;
    this.clock.touch(this);
    let pace: Promise<void> | undefined;
    if (isBinary) {
      // Audio beyond the socket's rate is slowed, not dropped: each frame waits for its share, and while
      // more than a few seconds of it are queued the socket stops reading (TCP pushes back on the client).
      const audioRate = REALTIME_BYTES_PER_S * cfg.wsAudioRealtime;
      const maxQueuedAudio = Math.max(4 * audioRate, 4 * cfg.maxFrameBytes);
      const size = rawLength(data);
      const waitMs = (this.audio ??= new TokenBucket(audioRate, Math.max(audioRate, cfg.maxFrameBytes))).reserve(size);
      // A frame within the rate (the bucket has its bytes, so no earlier frame is waiting) goes straight on.
      if (waitMs > 0) {
        this.queuedAudio += size;
        if (this.queuedAudio > maxQueuedAudio && !ws.isPaused) ws.pause();
        const release = () => {
          this.queuedAudio -= size;
          if (ws.isPaused && this.queuedAudio <= maxQueuedAudio / 2) ws.resume();
        };
        pace = new Promise<void>((r) => setTimeout(r, waitMs)).then(release);
      }
    } else if (!(this.messages ??= new TokenBucket(cfg.wsMessagesPerS, cfg.wsMessagesPerS * 2)).take()) {
      // A message over the socket's rate is refused at once, before it queues any work; the socket stays open.
      this.sendError(new E.ORB_ERR_TOO_MANY_REQUESTS(`${cfg.wsMessagesPerS} messages/s on this socket`));
      return;
    }
    this.chain = this.chain
      .then(pace ? () => pace.then(() => this.handle(data, isBinary)) : () => this.handle(data, isBinary))
      .catch((err) => {
        const ce = toClientError(err);
        if (ce.statusCode >= 500) this.req.log.error({ err }, 'socket message failed');
        this.sendError(ce);
      });
  }

  private sendJson(msg: unknown): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private sendError(err: { code?: string; statusCode?: number; message: string }): void {
    this.app.metrics.wsRejected.inc({ reason: err.code ?? 'unknown' });
    this.sendJson({ type: 'error', code: err.code ?? 'ORB_ERR_INTERNAL', status: err.statusCode ?? 500, message: err.message });
  }

  private get speakDefault(): boolean {
    return this.req.query.speak ?? false;
  }

  /** Appends to the open utterance (opening one if needed); the vault has it before the next frame is read. */
  private async appendUtterance(sid: string, pcm: Buffer): Promise<void> {
    const { orb } = this;
    if (!this.utterance) {
      this.utterance = { turn: randomUUID(), bytes: 0 };
      await orb.sessions.setOpenUtterance(sid, this.utterance.turn);
    }
    if (!pcm.length) return;
    if (this.utterance.bytes + pcm.length > orb.config.maxUtteranceBytes)
      throw new E.ORB_ERR_UTTERANCE_TOO_LONG(orb.config.maxUtteranceBytes);
    this.utterance.bytes = await orb.turns.appendAudio(sid, this.utterance.turn, pcm);
  }

  /** A turn from this socket draws on the key's rate limit, the same budget its HTTP requests share on every replica. */
  private async spendKeyBudget(): Promise<void> {
    const r = await this.keyBudget(this.req);
    if (!r.isAllowed && r.isExceeded) throw new E.ORB_ERR_TOO_MANY_REQUESTS(`${r.ttlInSeconds} s`);
  }

  private async commitUtterance(sid: string, speak: boolean, by: 'client' | 'vad'): Promise<void> {
    const { orb } = this;
    if (!this.utterance || this.utterance.bytes === 0)
      throw new E.ORB_ERR_BAD_EVENT('input_audio.commit with no audio since the last commit');
    const u: { turn: string; bytes: number } = this.utterance;
    this.utterance = null;
    await orb.sessions.clearOpenUtterance(sid);
    this.sendJson({ type: 'input_audio.committed', turn: u.turn, bytes: u.bytes, by });
    try {
      await orb.turns.commitAudio(sid, u.turn, { speak });
    } catch (err) {
      // Refused before anything was written (no turn.start in the vault): the client that saw
      // input_audio.committed still gets this turn's one turn.end.
      const ce = toClientError(err);
      this.sendJson({ type: 'turn.end', session: sid, turn: u.turn, data: { outcome: 'refused', code: ce.code } });
      throw err;
    }
    await orb.sessions.touch(sid, this.req.apiKeyId);
  }

  private async setup(): Promise<void> {
    const { orb, afterSeq } = this;
    const sid = this.sessionId ?? (this.sessionId = (await orb.sessions.create(this.req.apiKeyId, orb.config.podName)).id);
    const open = await orb.sessions.openUtterance(sid);
    if (open) this.utterance = { turn: open, bytes: await orb.turns.audioBytes(sid, open) };
    const lastSeq = await orb.events.lastSeq(sid);
    this.sendJson({
      type: 'session.ready',
      session: sid,
      resumed: this.resumed,
      after_seq: afterSeq,
      last_seq: lastSeq,
      replica: orb.config.podName,
      open_utterance: this.utterance,
      audio: { encoding: 'pcm16le', sample_rate: SAMPLE_RATE, channels: 1 },
      max_frame_bytes: orb.config.maxFrameBytes,
    });
    // Trimmed history (MAXLEN on the event stream) is reported, never silently skipped.
    if (afterSeq > 0) {
      const first = (await orb.events.read(sid, 0, 1))[0];
      if (first && first.seq > afterSeq + 1)
        this.sendError(new E.ORB_ERR_BAD_SEQ(`events ${afterSeq + 1}..${first.seq - 1} have expired; resuming at ${first.seq}`));
    }
    if (this.closed) return;
    const s = await orb.hub.subscribe(sid, afterSeq, this);
    if (this.closed) s.close();
    else this.sub = s;
  }

  /** The hub's delivery of this session's events (this object is the receiver: no closure per socket). */
  deliver(events: TurnEvent[]): void {
    const { app, ws } = this;
    const now = Date.now();
    for (const ev of events) {
      this.sendJson(ev);
      this.lastSeq = ev.seq;
      if (ev.ts) app.metrics.busLag.observe(Math.max(0, now - ev.ts) / 1000);
    }
    app.metrics.eventsForwarded.inc(events.length);
    // A client that cannot keep up must not grow this replica's memory without bound: it resumes later from its seq.
    if (ws.bufferedAmount > SLOW_CLIENT_BYTES && ws.readyState === ws.OPEN) {
      app.metrics.wsRejected.inc({ reason: 'slow_client' });
      ws.close(E.WS_CLOSE.tryAgainLater, resumeHint(this.sessionId, this.lastSeq));
    }
  }

  private endpointerOf(vad: NonNullable<FastifyInstance['orb']['vad']>): Endpointer {
    const cfg = this.orb.config;
    return (this.endpointer ??= new Endpointer(
      vad.stream({ threshold: cfg.vadThreshold, minSilenceMs: cfg.vadSilenceMs }),
      Math.round(cfg.vadPreRollMs * 32),
    ));
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    const { orb } = this;
    // Until setup has run there is no session to act on (frames wait on the chain behind it).
    const sid = this.sessionId;
    if (this.closed || !sid) return;
    if (isBinary) {
      // ws hands each message over in a buffer of its own (never reused): no copy is needed to keep it.
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      checkPcmFrame(buf);
      if (!orb.vad || this.req.query.vad === false) {
        await this.appendUtterance(sid, buf);
        return;
      }
      for (const act of await this.endpointerOf(orb.vad).push(buf)) {
        if (act.type === 'speech_start') {
          await this.appendUtterance(sid, Buffer.alloc(0));
          // Also the barge-in signal: a client playing a reply stops it.
          this.sendJson({ type: 'input_audio.speech_started', turn: this.utterance!.turn });
        } else if (act.type === 'audio') {
          await this.appendUtterance(sid, act.pcm);
        } else {
          this.sendJson({ type: 'input_audio.speech_stopped', turn: this.utterance?.turn ?? null });
          await this.commitUtterance(sid, this.speakDefault, 'vad');
        }
      }
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch (err) {
      throw new E.ORB_ERR_MALFORMED_JSON((err as Error).message);
    }
    if (!validateClientEvent(msg)) {
      const t = (msg as { type?: unknown } | null)?.type;
      throw new E.ORB_ERR_BAD_EVENT(
        typeof t === 'string' ? `'${t.slice(0, 40)}' is unknown or has bad fields` : 'an object with a string "type" is required',
      );
    }
    switch (msg.type) {
      case 'ping':
        this.sendJson({ type: 'pong', id: msg.id });
        return;
      case 'input_audio.format':
        if (msg.encoding !== 'pcm16le' || msg.sample_rate !== SAMPLE_RATE || msg.channels !== 1) {
          throw new E.ORB_ERR_AUDIO_FORMAT(`${msg.encoding}, ${msg.sample_rate} Hz, ${msg.channels} channel(s)`);
        }
        this.sendJson({ type: 'input_audio.format', encoding: 'pcm16le', sample_rate: SAMPLE_RATE, channels: 1 });
        return;
      case 'input_audio.clear':
        if (this.utterance) {
          await orb.turns.discardAudio(sid, this.utterance.turn);
          await orb.sessions.clearOpenUtterance(sid);
        }
        this.sendJson({ type: 'input_audio.cleared', turn: this.utterance?.turn ?? null });
        this.utterance = null;
        return;
      case 'input_audio.commit':
        await this.spendKeyBudget();
        await this.commitUtterance(sid, msg.speak ?? this.speakDefault, 'client');
        return;
      case 'text': {
        await this.spendKeyBudget();
        const t = await orb.turns.startText(sid, msg.text, { speak: msg.speak ?? this.speakDefault });
        this.sendJson({ type: 'turn.accepted', turn: t.turn, start_seq: t.seq, deadline_ms: t.deadlineMs });
        await orb.sessions.touch(sid, this.req.apiKeyId);
        return;
      }
    }
  }
}
