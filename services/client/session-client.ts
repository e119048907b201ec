/**
 * Client of the ORB WebSocket `/v1/session` (docs/websocket-protocol.md), shared by the `orb` CLI
 * (Node, `ws`) and the web client (browser WebSocket): it must stay free of Node and DOM imports.
 * It keeps the session id and the last `seq` seen, reconnects after a dropped connection (to the
 * next URL when several replicas are known) with `resume`, and delivers every event exactly once.
 */

/** A turn event as the gateway forwards it from the session's event stream. */
export interface OrbEvent {
  readonly seq: number;
  readonly type: string;
  readonly session?: string;
  readonly turn?: string;
  readonly ts?: number;
  readonly data?: unknown;
  readonly [k: string]: unknown;
}

/** The part of the WebSocket API both `ws` and the browser implement. */
export interface WsLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WsFactory = (url: string) => WsLike;

export type SessionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface OrbSessionOptions {
  /** WebSocket URLs of `/v1/session`, tried in turn on reconnect (one per replica, or one Service). */
  readonly urls: readonly string[];
  readonly connect: WsFactory;
  /** Resume this session instead of starting a new one. */
  readonly sessionId?: string;
  /** Last seq already seen of `sessionId`. @default 0 */
  readonly lastSeq?: number;
  /** Every event, once, in seq order. */
  readonly onEvent?: (ev: OrbEvent) => void;
  /** Binary frames from the gateway (reply audio when it is sent as binary). */
  readonly onBinary?: (data: Uint8Array) => void;
  readonly onState?: (state: SessionState, detail?: string) => void;
  /** Extra query parameters of every connect, e.g. `{ speak: 'true' }` or the browser's `token`. */
  readonly query?: Readonly<Record<string, string>>;
  /**
   * Query parameters fetched before each connect, e.g. a single-use WebSocket ticket from
   * POST /v1/session/tickets (a ticket cannot be replayed on a reconnect). A rejection retries later.
   * @default - none
   */
  readonly dialQuery?: () => Promise<Readonly<Record<string, string>>>;
  /** Reconnect after a drop. @default true */
  readonly reconnect?: boolean;
  /** Gives up after this many failed reconnects in a row. @default 20 */
  readonly maxRetries?: number;
  /** First retry delay; doubles up to 5 s. @default 200 */
  readonly retryDelayMs?: number;
}

/** Replies to the client's own messages; `turn.accepted` carries the turn's seq but is not an event. */
const CONTROL = new Set([
  'session.ready',
  'turn.accepted',
  'input_audio.format',
  'input_audio.committed',
  'input_audio.cleared',
  'input_audio.speech_started',
  'input_audio.speech_stopped',
  'pong',
  'error',
]);

/** Close codes after which a reconnect cannot help. */
const FATAL_CLOSE = new Set([1000, 1003, 1008, 1009, 4401, 4404, 4429]);

export class OrbSession {
  sessionId: string | undefined;
  lastSeq: number;
  /** Replica that currently serves the socket (from the `session` message), when told. */
  replica: string | undefined;
  private ws: WsLike | undefined;
  private urlIndex = 0;
  private retries = 0;
  private closedByUser = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly pendingText: string[] = [];
  /** A dial is under way (its query, e.g. a ticket, is being fetched): no second dial may start. */
  private dialing = false;
  state: SessionState = 'connecting';

  constructor(private readonly opts: OrbSessionOptions) {
    if (!opts.urls.length) throw new Error('OrbSession needs at least one URL');
    this.sessionId = opts.sessionId;
    this.lastSeq = opts.lastSeq ?? 0;
  }

  /** Opens the socket; resolves once the gateway has confirmed the session. */
  open(): Promise<void> {
    this.closedByUser = false;
    const ready = this.whenReady();
    this.dial();
    return ready;
  }

  /** Resolves when the session is (again) confirmed by a gateway. */
  whenReady(): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** One frame of PCM16LE 16 kHz mono microphone audio. Dropped while disconnected. */
  sendAudio(pcm: ArrayBuffer | ArrayBufferView): boolean {
    if (this.state !== 'open' || !this.ws) return false;
    this.ws.send(pcm);
    return true;
  }

  /** A typed (text) turn. */
  sendText(text: string): void {
    this.sendJson({ type: 'text', text });
  }

  /** Ends the current utterance: the gateway starts its turn (docs/websocket-protocol.md). */
  endUtterance(speak?: boolean): void {
    this.sendJson({ type: 'input_audio.commit', ...(speak === undefined ? {} : { speak }) });
  }

  /** Drops the audio sent since the last commit (e.g. a false start). */
  clearUtterance(): void {
    this.sendJson({ type: 'input_audio.clear' });
  }

  /** Drops the connection as a network failure would (no close handshake); the session resumes. */
  drop(): void {
    const ws = this.ws as (WsLike & { terminate?: () => void }) | undefined;
    if (!ws) return;
    if (typeof ws.terminate === 'function') ws.terminate();
    else ws.close(4000, 'client dropped the connection');
  }

  /**
   * Dials now instead of at the next back-off step, and again after a give-up (e.g. the browser
   * says the network is back). Resumes from `lastSeq`; queued text turns are sent once open.
   */
  reconnectNow(): void {
    if (this.closedByUser || this.ws || this.dialing || this.state === 'open') return;
    clearTimeout(this.retryTimer);
    this.retries = Math.min(this.retries, 1); // a fresh back-off, still reported as a reconnect
    this.dial();
  }

  close(): void {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    this.setState('closed');
    this.ws?.close(1000, 'client done');
  }

  private sendJson(msg: Record<string, unknown>): void {
    const text = JSON.stringify(msg);
    if (this.state === 'open' && this.ws) this.ws.send(text);
    else this.pendingText.push(text);
  }

  private setState(s: SessionState, detail?: string): void {
    this.state = s;
    this.opts.onState?.(s, detail);
  }

  private dial(): void {
    if (this.dialing || this.ws) return; // one socket at a time: a second would take the queued turns' flush
    if (!this.opts.dialQuery) {
      this.dialWith({});
      return;
    }
    this.dialing = true;
    this.opts.dialQuery().then(
      (q) => {
        this.dialing = false;
        if (!this.closedByUser) this.dialWith(q);
      },
      (err) => {
        this.dialing = false;
        if (!this.closedByUser) this.scheduleReconnect(`no ticket: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private dialWith(extra: Readonly<Record<string, string>>): void {
    const url = this.urlWithQuery(this.opts.urls[this.urlIndex % this.opts.urls.length], extra);
    this.setState(this.retries ? 'reconnecting' : 'connecting', url);
    let ws: WsLike;
    try {
      ws = this.opts.connect(url);
    } catch (err) {
      this.scheduleReconnect(String(err));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      /* the gateway speaks first: session.ready */
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.onMessage(ws, ev.data);
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.closedByUser) return;
      if (FATAL_CLOSE.has(ev.code) || this.opts.reconnect === false) {
        this.setState('closed', `${ev.code} ${ev.reason}`);
        this.failWaiters(new Error(`session closed: ${ev.code} ${ev.reason}`));
        return;
      }
      // 1012 (replica draining), 1006 (replica died), anything else: resume elsewhere.
      this.urlIndex++;
      this.scheduleReconnect(`${ev.code} ${ev.reason}`);
    };
  }

  /** The session to resume and the last seq seen travel in the query (the gateway checks both before upgrading). */
  private urlWithQuery(base: string, extra: Readonly<Record<string, string>> = {}): string {
    const q: Record<string, string> = { ...this.opts.query, ...extra };
    if (this.sessionId) {
      q.session = this.sessionId;
      q.last_seq = String(this.lastSeq);
    }
    const qs = Object.entries(q)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return qs ? `${base}${base.includes('?') ? '&' : '?'}${qs}` : base;
  }

  private scheduleReconnect(why: string): void {
    if (++this.retries > (this.opts.maxRetries ?? 20)) {
      this.setState('closed', `gave up reconnecting: ${why}`);
      this.failWaiters(new Error(`gave up reconnecting: ${why}`));
      return;
    }
    this.setState('reconnecting', why);
    const delay = Math.min(5000, (this.opts.retryDelayMs ?? 200) * 2 ** (this.retries - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closedByUser) this.dial();
    }, delay);
  }

  private failWaiters(err: Error): void {
    const w = this.readyWaiters.splice(0);
    for (const x of w) x.reject(err);
  }

  private onMessage(ws: WsLike, data: unknown): void {
    if (typeof data !== 'string') {
      const bytes =
        data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : ArrayBuffer.isView(data)
            ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
            : undefined;
      if (bytes) this.opts.onBinary?.(bytes);
      return;
    }
    let msg: OrbEvent;
    try {
      msg = JSON.parse(data) as OrbEvent;
    } catch {
      return;
    }
    if (msg.type === 'session.ready') {
      this.sessionId = String(msg.session ?? this.sessionId);
      if (typeof msg.replica === 'string') this.replica = msg.replica;
      this.retries = 0;
      this.setState('open', this.replica);
      for (const t of this.pendingText.splice(0)) ws.send(t); // on the socket that said ready, never a newer one still connecting
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      return;
    }
    if (typeof msg.seq !== 'number' || CONTROL.has(msg.type)) {
      // Control messages (acks, errors, pongs) are not part of the event stream, even with a seq.
      this.opts.onEvent?.(msg);
      return;
    }
    // Exactly once: a resumed stream may overlap what was delivered before the drop.
    if (msg.seq <= this.lastSeq) return;
    this.lastSeq = msg.seq;
    this.opts.onEvent?.(msg);
  }
}
