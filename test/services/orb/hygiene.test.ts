/**
 * Connection hygiene on real sockets: dead and silent WebSockets are dropped and give their slot
 * under the key's cluster-wide cap back, per-socket rates sit inside the key's shared budget, slow
 * HTTP clients are cut off, and X-Forwarded-For is believed only from the configured ingress hops.
 */
import { connect, Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { drainAndClose, WS_CLOSE_GRACE_MS } from '../../../services/orb/drain';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, Client, http, KEYS, listen, makeApp, waitFor } from './support';

jest.setTimeout(60_000);
const redis = testRedis();
const apps: FastifyInstance[] = [];
const prefixes: string[] = [];

async function gateway(
  extra: Record<string, string>,
  pod = 'orb-hyg',
  prefix = uniquePrefix('hyg'),
): Promise<{ app: FastifyInstance; host: string; prefix: string }> {
  const app = await makeApp(prefix, pod, extra);
  apps.push(app);
  prefixes.push(prefix);
  return { app, host: await listen(app), prefix };
}

/** A client whose socket never answers pings: a dead peer as the server sees it. */
function deadClient(host: string, path = '/v1/session?vad=false'): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${host}${path}`, { headers: auth('alice'), autoPong: false });
  ws.on('error', () => undefined);
  return new Promise((ok, fail) => {
    ws.once('open', () => ok(ws));
    ws.once('unexpected-response', (_q, r) => fail(new Error(`refused ${r.statusCode}`)));
  });
}

const closed = (ws: WebSocket) =>
  new Promise<number>((ok) => {
    if (ws.readyState === WebSocket.CLOSED) ok(-1);
    else ws.once('close', (c) => ok(c));
  });

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  for (const p of prefixes) await deletePrefix(redis, p);
  await redis.quit();
});

describe('WebSocket heartbeats, idle timeout and the per-key cap', () => {
  test('a socket that stops answering pings is dropped within two ping periods', async () => {
    const { host } = await gateway({ ORB_WS_PING_MS: '200', ORB_WS_IDLE_MS: '60000' });
    const ws = await deadClient(host);
    const t0 = Date.now();
    const code = await closed(ws);
    expect(code).toBe(1006); // terminated: no close handshake with a dead peer
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  test('a socket that answers pings but sends nothing is closed 4408 after ORB_WS_IDLE_MS; pings from the client keep it', async () => {
    const { host } = await gateway({ ORB_WS_PING_MS: '200', ORB_WS_IDLE_MS: '800' });
    const silent = new Client(host, '/v1/session?vad=false', auth('alice'));
    const chatty = new Client(host, '/v1/session?vad=false', auth('alice'));
    await Promise.all([silent.opened, chatty.opened]);
    const keep = setInterval(() => chatty.send({ type: 'ping' }), 300);
    try {
      await silent.closed;
      expect(silent.closeCode).toBe(4408);
      expect(chatty.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      clearInterval(keep);
      await chatty.close();
    }
  });

  test('the HTTP header, request and idle timeouts do not cut an upgraded WebSocket that is in use', async () => {
    const { host } = await gateway({
      ORB_HTTP_REQUEST_TIMEOUT_MS: '300',
      ORB_HTTP_HEADERS_TIMEOUT_MS: '200',
      ORB_HTTP_IDLE_TIMEOUT_MS: '1000',
      ORB_WS_PING_MS: '200',
    });
    const c = new Client(host, '/v1/session?vad=false', auth('alice'));
    await c.next((m) => m.type === 'session.ready', 'ready');
    const keep = setInterval(() => c.send({ type: 'ping', id: 'k' }), 250);
    await new Promise((r) => setTimeout(r, 3000));
    clearInterval(keep);
    // A listener that only answers the server's pings, for longer than the HTTP idle timeout, stays too.
    await new Promise((r) => setTimeout(r, 2500));
    expect(c.closeCode).toBeNull();
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    await c.close();
  });

  test("the issue's scenario: 100 silent sockets hold the cap of 100 only until ORB_WS_IDLE_MS, then the key gets in again", async () => {
    const { host, prefix } = await gateway({
      ORB_MAX_SOCKETS_PER_KEY: '100',
      ORB_WS_IDLE_MS: '4000',
      ORB_WS_PING_MS: '500',
      ORB_RATE_LIMIT_MAX: '1000',
    });
    const silent: Client[] = [];
    for (let i = 0; i < 100; i++) silent.push(new Client(host, '/v1/session?vad=false', auth('carol')));
    await Promise.all(silent.map((c) => c.opened));
    // Opening 100 sockets can outlast the idle time on a loaded machine: one message each restarts
    // every idle clock together, so all 100 still hold the cap when the 101st knocks. Silent from here.
    for (const c of silent) c.send({ type: 'ping' });
    await Promise.all(silent.map((c) => c.next((m) => m.type === 'pong', 'pong')));
    const locked = new Client(host, '/v1/session?vad=false', auth('carol'));
    await locked.opened.catch(() => undefined);
    expect(locked.refusedStatus).toBe(429);
    await Promise.all(silent.map((c) => c.closed));
    expect(silent.map((c) => c.closeCode)).toEqual(Array(100).fill(4408));
    await waitFor(async () => (await redis.zcard(`${prefix}orb:sockets:carol`)) === 0, 'every lease released', 5000);
    const again = new Client(host, '/v1/session?vad=false', auth('carol'));
    await again.opened;
    await again.close();
  });

  test('dead sockets across two replicas cannot lock a key out: the cap frees as heartbeats drop them', async () => {
    const prefix = uniquePrefix('hygcap');
    const extra = { ORB_MAX_SOCKETS_PER_KEY: '3', ORB_WS_PING_MS: '300', ORB_WS_IDLE_MS: '60000' };
    const a = await gateway(extra, 'orb-cap-a', prefix);
    const b = await gateway(extra, 'orb-cap-b', prefix);
    const dead = [await deadClient(a.host), await deadClient(a.host), await deadClient(b.host)];
    const refused = new Client(b.host, '/v1/session?vad=false', auth('alice'));
    await refused.opened.catch(() => undefined);
    expect(refused.refusedStatus).toBe(429);
    expect(JSON.parse(refused.refusedBody).code).toBe('ORB_ERR_TOO_MANY_SOCKETS');
    await Promise.all(dead.map(closed));
    // The leases go with the sockets: a new client gets in on either replica without waiting for a lease TTL.
    const fresh = await waitFor(
      async () => {
        const c = new Client(b.host, '/v1/session?vad=false', auth('alice'));
        try {
          await c.opened;
          return c;
        } catch {
          return null;
        }
      },
      'a slot after the dead sockets were dropped',
      5000,
    );
    expect(await redis.zcard(`${prefix}orb:sockets:alice`)).toBe(1);
    await fresh.close();
  });
});

describe("per-socket rates inside the key's shared budget", () => {
  test('messages over ORB_WS_MESSAGES_PER_S are refused with a code and the socket stays open', async () => {
    const { host } = await gateway({ ORB_WS_MESSAGES_PER_S: '5' });
    const c = new Client(host, '/v1/session?vad=false', auth('alice'));
    await c.next((m) => m.type === 'session.ready', 'ready');
    for (let i = 0; i < 60; i++) c.send({ type: 'ping', id: i });
    await waitFor(() => c.messages.filter((m) => m.type === 'pong' || m.type === 'error').length >= 60, '60 answers');
    const limited = c.messages.filter((m) => m.type === 'error' && m.code === 'ORB_ERR_TOO_MANY_REQUESTS').length;
    const pongs = c.messages.filter((m) => m.type === 'pong').length;
    console.log(`socket message rate: 60 sent at once, ${pongs} answered, ${limited} refused with ORB_ERR_TOO_MANY_REQUESTS`);
    expect(pongs).toBeGreaterThanOrEqual(10);
    expect(pongs).toBeLessThan(20);
    expect(limited).toBe(60 - pongs);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    await c.close();
  });

  test("turns on an open socket draw on the key's budget: once HTTP spent it, no turn is queued", async () => {
    const { host, prefix } = await gateway({ ORB_RATE_LIMIT_MAX: '4', ORB_RATE_LIMIT_WINDOW_MS: '60000' });
    const c = new Client(host, '/v1/session?vad=false', auth('bob'));
    await c.next((m) => m.type === 'session.ready', 'ready'); // the upgrade was request 1
    let spent = 0;
    while ((await http(host, { url: '/v1/identity', headers: auth('bob') })).statusCode !== 429 && spent < 10) spent++;
    const jobs = await redis.xlen(`${prefix}acp:jobs:cali`);
    for (let i = 0; i < 20; i++) c.send({ type: 'text', text: `turn ${i}` });
    await waitFor(() => c.messages.filter((m) => m.type === 'error').length >= 20, '20 refusals');
    expect(c.messages.filter((m) => m.type === 'error').map((m) => m.code)).toEqual(Array(20).fill('ORB_ERR_TOO_MANY_REQUESTS'));
    expect(c.messages.filter((m) => m.type === 'turn.accepted')).toEqual([]);
    expect(await redis.xlen(`${prefix}acp:jobs:cali`)).toBe(jobs);
    await c.close();
  });

  test('audio over ORB_WS_AUDIO_REALTIME is paced, not lost', async () => {
    const { host } = await gateway({ ORB_WS_AUDIO_REALTIME: '1', ORB_MAX_FRAME_BYTES: '4096' });
    const c = new Client(host, '/v1/session?vad=false', auth('carol'));
    await c.next((m) => m.type === 'session.ready', 'ready');
    const bytes = 3 * 32_000; // 3 s of audio, sent at once
    const t0 = Date.now();
    for (let off = 0; off < bytes; off += 3200) c.ws.send(Buffer.alloc(3200, 1));
    c.send({ type: 'input_audio.commit' });
    const committed = await c.next((m) => m.type === 'input_audio.committed', 'committed');
    const elapsed = Date.now() - t0;
    console.log(`audio pacing: ${bytes} B at 1x real time (burst 1 s) committed after ${elapsed} ms, ${committed.bytes} B stored`);
    expect(committed.bytes).toBe(bytes);
    expect(elapsed).toBeGreaterThanOrEqual(1800); // (3 s - 1 s burst) at real time, less timer slack
    await c.close();
  });
});

describe('slow HTTP clients', () => {
  /** Opens `n` raw connections driven by `drive`; resolves with how long each took to be closed by the server. */
  async function slowClients(
    hostPort: string,
    n: number,
    drive: (s: Socket, i: number) => NodeJS.Timeout | undefined,
    boundMs: number,
  ): Promise<number[]> {
    const [h, p] = hostPort.split(':');
    return Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<number>((ok) => {
            const t0 = Date.now();
            const s = connect(Number(p), h);
            let timer: NodeJS.Timeout | undefined;
            const bound = setTimeout(() => {
              clearInterval(timer);
              s.destroy();
              ok(Infinity);
            }, boundMs);
            s.on('connect', () => {
              timer = drive(s, i);
            });
            s.on('data', () => undefined);
            s.on('error', () => undefined);
            s.on('close', () => {
              clearInterval(timer);
              clearTimeout(bound);
              ok(Date.now() - t0);
            });
          }),
      ),
    );
  }

  test('200 bodies that never finish are cut off at ORB_HTTP_REQUEST_TIMEOUT_MS, and the gateway keeps serving', async () => {
    const { host } = await gateway({ ORB_HTTP_REQUEST_TIMEOUT_MS: '1000', ORB_HTTP_HEADERS_TIMEOUT_MS: '500' });
    const drip = (s: Socket) => {
      s.write(
        `POST /v1/turns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"text":"`,
      );
      return setInterval(() => s.write('a'), 100);
    };
    const pending = slowClients(host, 200, drip, 8000);
    // While they drip, a normal client is served.
    expect((await http(host, { url: '/v1/identity', headers: auth('alice') })).statusCode).not.toBe(0);
    const times = await pending;
    console.log(`slow bodies: 200 dripping clients closed after ${Math.min(...times)}..${Math.max(...times)} ms`);
    expect(Math.max(...times)).toBeLessThan(4000);
  });

  test('headers that never finish, and connections that never send, are cut off at ORB_HTTP_HEADERS_TIMEOUT_MS', async () => {
    const { host } = await gateway({ ORB_HTTP_REQUEST_TIMEOUT_MS: '5000', ORB_HTTP_HEADERS_TIMEOUT_MS: '500' });
    const header = 'GET /v1/identity HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    const slowHeaders = (s: Socket) => {
      s.write(header);
      return setInterval(() => s.write('b'), 100);
    };
    const silent = () => undefined;
    const [dripping, mute] = await Promise.all([slowClients(host, 50, slowHeaders, 8000), slowClients(host, 50, silent, 8000)]);
    console.log(
      `slow headers: 50 closed after ≤ ${Math.max(...dripping)} ms; 50 silent connections closed after ≤ ${Math.max(...mute)} ms`,
    );
    expect(Math.max(...dripping)).toBeLessThan(3000);
    expect(Math.max(...mute)).toBeLessThan(3000);
  });
});

describe('trustProxy: only the ingress hops are believed', () => {
  const guess = (host: string, xff: string) =>
    http(host, { url: '/v1/identity', headers: { authorization: 'Bearer wrong-wrong-wrong-wrong', 'x-forwarded-for': xff } });

  test.each([
    ['no proxy trusted (ORB_TRUST_PROXY_HOPS=0)', '0', (i: number) => `203.0.113.${i}`],
    [
      'one ingress hop (ORB_TRUST_PROXY_HOPS=1), spoofed entries before the ingress one',
      '1',
      (i: number) => `203.0.113.${i}, 198.51.100.7`,
    ],
  ])('%s: a spoofed X-Forwarded-For does not escape the per-IP wrong-key limit', async (_n, hops, xff) => {
    const { host } = await gateway({ ORB_TRUST_PROXY_HOPS: hops, ORB_RATE_LIMIT_MAX: '3' });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await guess(host, xff(i))).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
  });

  test('with one hop, the address the ingress appended is the client: two real clients have separate budgets', async () => {
    const { host } = await gateway({ ORB_TRUST_PROXY_HOPS: '1', ORB_RATE_LIMIT_MAX: '2' });
    const a = [];
    for (let i = 0; i < 3; i++) a.push((await guess(host, '198.51.100.1')).statusCode);
    const b = (await guess(host, 'spoof, 198.51.100.2')).statusCode;
    expect(a).toEqual([401, 401, 429]);
    expect(b).toBe(401);
  });
});

describe('draining with peers that never answer', () => {
  test("a peer that stops reading (offline, gone) cannot hold the drain for ws's 30 s close timeout: it is cut after the close grace", async () => {
    const { app, host } = await gateway({ ORB_WS_PING_MS: '60000', ORB_WS_IDLE_MS: '60000' });
    const reading = new Client(host, '/v1/session?vad=false', auth('alice'));
    const stalled = await deadClient(host);
    await reading.opened;
    // The stalled peer's socket stops reading: the server's close frame is never answered.
    (stalled as unknown as { _socket: Socket })._socket.pause();
    const t0 = Date.now();
    await drainAndClose(app, 0);
    const took = Date.now() - t0;
    apps.splice(apps.indexOf(app), 1);
    await reading.closed;
    expect(reading.closeCode).toBe(1012); // the reading client got the resume hint
    expect(took).toBeGreaterThanOrEqual(WS_CLOSE_GRACE_MS - 100); // the stalled one was waited on, then cut
    expect(took).toBeLessThan(WS_CLOSE_GRACE_MS + 10_000); // ws alone waits 30 s
    stalled.terminate();
  });

  test("a socket the server already began to close (idle 4408) whose peer never answers is cut too, not left to ws's timer", async () => {
    const { app, host } = await gateway({ ORB_WS_PING_MS: '60000', ORB_WS_IDLE_MS: '1000' });
    const stalled = await deadClient(host);
    (stalled as unknown as { _socket: Socket })._socket.pause();
    await waitFor(
      () => [...app.websocketServer.clients].some((c) => c.readyState === c.CLOSING) || undefined,
      'the idle close frame is sent',
    );
    const t0 = Date.now();
    await drainAndClose(app, 0);
    const took = Date.now() - t0;
    apps.splice(apps.indexOf(app), 1);
    expect(took).toBeLessThan(WS_CLOSE_GRACE_MS + 10_000); // ws alone waits 30 s
    stalled.terminate();
  });
});
