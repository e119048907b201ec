/**
 * The idle clock of every WebSocket on this replica: one timer per process instead of a Node
 * Timeout per socket (a Timeout with its arguments and boxed times is ~250 B of heap, and an
 * idle socket used to hold two: its idle timer and its ping interval).
 *
 * The sockets sit in a list ordered by their last client frame: a frame moves its socket to the
 * tail, so the head is always the next to expire, and the one timer, armed for the head, closes
 * each socket exactly `idleMs` after its last frame, as a per-socket setTimeout refreshed on
 * every frame did. A socket whose clock has run out leaves the list until its next frame (a
 * fired timer that refresh() restarts).
 */
export interface IdleClocked {
  /** The last client frame, ms after the clock's epoch. */
  idleSince: number;
  idlePrev: IdleClocked | null;
  idleNext: IdleClocked | null;
  /** Called once when `idleMs` has passed since the last touch. */
  idleTimeout(): void;
}

export class IdleClock {
  private head: IdleClocked | null = null;
  private tail: IdleClocked | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Times are kept relative to this, so for weeks they are small integers (no boxed double per socket). */
  private readonly epoch = Date.now();
  private closed = false;

  constructor(private readonly idleMs: number) {}

  /** (Re)starts the socket's clock: it times out `idleMs` from now unless touched again. */
  touch(s: IdleClocked): void {
    this.remove(s);
    if (this.closed) return;
    s.idleSince = Date.now() - this.epoch;
    s.idlePrev = this.tail;
    if (this.tail) this.tail.idleNext = s;
    else this.head = s;
    this.tail = s;
    if (!this.timer) this.arm(this.idleMs);
  }

  /** Stops the socket's clock (idempotent). */
  remove(s: IdleClocked): void {
    if (s.idlePrev) s.idlePrev.idleNext = s.idleNext;
    else if (this.head === s) this.head = s.idleNext;
    else return; // not in the list
    if (s.idleNext) s.idleNext.idlePrev = s.idlePrev;
    else this.tail = s.idlePrev;
    s.idlePrev = s.idleNext = null;
  }

  /** Stops the timer; no socket times out after this. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.head) this.remove(this.head);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, ms));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    const now = Date.now() - this.epoch;
    for (let s = this.head; s && s.idleSince + this.idleMs <= now; s = this.head) {
      this.remove(s);
      s.idleTimeout();
    }
    // The head changed (touched, closed or timed out): wait for the new one.
    if (this.head && !this.timer) this.arm(this.head.idleSince + this.idleMs - now);
  }
}
