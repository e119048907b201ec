/**
 * The replica's one idle clock for all WebSockets (services/orb/socket-clock.ts) keeps what a
 * per-socket setTimeout refreshed on every frame did: each socket times out exactly idleMs after
 * its last touch, once, and again only if touched after that.
 */
import { IdleClock, type IdleClocked } from '../../../services/orb/socket-clock';

class FakeSocket implements IdleClocked {
  idleSince = 0;
  idlePrev: IdleClocked | null = null;
  idleNext: IdleClocked | null = null;
  readonly firedAt: number[] = [];
  constructor(private readonly t0: number) {}
  idleTimeout(): void {
    this.firedAt.push(Date.now() - this.t0);
  }
}

describe('IdleClock', () => {
  let t0: number;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_800_000_000_000 });
    t0 = Date.now();
  });
  afterEach(() => jest.useRealTimers());

  test('a socket times out idleMs after its last touch, once', () => {
    const clock = new IdleClock(1000);
    const s = new FakeSocket(t0);
    clock.touch(s);
    jest.advanceTimersByTime(999);
    expect(s.firedAt).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(s.firedAt).toEqual([1000]);
    jest.advanceTimersByTime(5000);
    expect(s.firedAt).toEqual([1000]);
    clock.close();
  });

  test('each touch restarts the clock; a touch after the timeout arms it again', () => {
    const clock = new IdleClock(1000);
    const s = new FakeSocket(t0);
    clock.touch(s);
    jest.advanceTimersByTime(600);
    clock.touch(s);
    jest.advanceTimersByTime(600);
    clock.touch(s);
    jest.advanceTimersByTime(999);
    expect(s.firedAt).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(s.firedAt).toEqual([2200]);
    jest.advanceTimersByTime(300);
    clock.touch(s);
    jest.advanceTimersByTime(1000);
    expect(s.firedAt).toEqual([2200, 3500]);
    clock.close();
  });

  test('many sockets: each by its own last touch, whatever the order of touches and removals', () => {
    const clock = new IdleClock(1000);
    const [a, b, c, d] = [0, 1, 2, 3].map(() => new FakeSocket(t0));
    clock.touch(a);
    jest.advanceTimersByTime(100);
    clock.touch(b);
    jest.advanceTimersByTime(100);
    clock.touch(c);
    clock.touch(d);
    jest.advanceTimersByTime(100);
    clock.touch(a); // the head moves to the tail: the timer armed for it must not fire anyone early
    clock.remove(c); // closed: never times out
    clock.remove(c); // idempotent
    jest.advanceTimersByTime(2000);
    expect(a.firedAt).toEqual([1300]);
    expect(b.firedAt).toEqual([1100]);
    expect(c.firedAt).toEqual([]);
    expect(d.firedAt).toEqual([1200]);
    clock.close();
  });

  test('removing the only socket, or closing the clock, stops its timeout', () => {
    const clock = new IdleClock(500);
    const a = new FakeSocket(t0);
    const b = new FakeSocket(t0);
    clock.touch(a);
    clock.remove(a);
    clock.touch(b);
    clock.close();
    clock.touch(b); // after close nothing is timed
    jest.advanceTimersByTime(5000);
    expect(a.firedAt).toEqual([]);
    expect(b.firedAt).toEqual([]);
  });
});
