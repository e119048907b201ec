/**
 * OrbSession.reconnectNow, which the web client calls when the browser says the network is back:
 * after the session client has given up on a down gateway, it dials again at once, resumes the
 * same session from its last seq and sends the text turn queued meanwhile. Real gateway, real
 * socket, real Redis; the gateway goes down and comes back on the same port.
 */
import type { FastifyInstance } from 'fastify';
import { nodeWsFactory } from '../../../services/cli/http';
import WebSocket from 'ws';
import { OrbEvent, OrbSession, SessionState, WsLike } from '../../../services/client/session-client';
import { drainAndClose } from '../../../services/orb/drain';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { KEYS, makeApp, seedIdentity, waitFor } from '../orb/support';

const prefix = uniquePrefix('sessclient');
const redis = testRedis();
let gateway: FastifyInstance | undefined;
let port = 0;

async function startGateway(): Promise<void> {
  gateway = await makeApp(prefix, `orb-sc-${Date.now()}`);
  await gateway.listen({ port, host: '127.0.0.1' });
  port = (gateway.server.address() as { port: number }).port;
}

beforeAll(async () => {
  await seedIdentity(redis, prefix);
  await startGateway();
});

afterAll(async () => {
  await gateway?.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('after giving up on a down gateway, reconnectNow resumes the same session and sends the queued turn', async () => {
  const states: string[] = [];
  const events: OrbEvent[] = [];
  const session = new OrbSession({
    urls: [`ws://127.0.0.1:${port}/v1/session`],
    connect: nodeWsFactory(KEYS.alice),
    maxRetries: 2,
    retryDelayMs: 50,
    onState: (s: SessionState, d) => states.push(`${s} ${d ?? ''}`),
    onEvent: (ev) => events.push(ev),
  });
  try {
    await session.open();
    const id = session.sessionId;
    expect(id).toBeTruthy();
    session.reconnectNow(); // open: nothing to do
    expect(states.filter((s) => s.startsWith('reconnecting'))).toEqual([]);

    await drainAndClose(gateway!, 0);
    await waitFor(() => states.some((s) => s.startsWith('closed gave up reconnecting')), 'the client gives up');
    session.sendText('hello after the outage'); // queued while down

    await startGateway();
    session.reconnectNow();
    await session.whenReady();
    expect(session.sessionId).toBe(id);
    const accepted = await waitFor(() => events.find((e) => e.type === 'turn.accepted'), 'the queued turn is accepted');
    expect(accepted.session ?? id).toBe(id);
    await waitFor(() => session.lastSeq > 0 && events.some((e) => e.type === 'turn.start'), 'the turn starts on the resumed session');
  } finally {
    session.close();
  }
  // After a close by the user it stays closed.
  const before = states.length;
  session.reconnectNow();
  expect(states.length).toBe(before);
});

test('a ticket dial is one dial: reconnectNow during the ticket fetch starts no second socket, and the queued turn goes out on the socket that said ready', async () => {
  const base = `127.0.0.1:${port}`;
  let fetches = 0;
  const sockets: string[] = [];
  let releaseTicket: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    releaseTicket = r;
  });
  const events: OrbEvent[] = [];
  const session = new OrbSession({
    urls: [`ws://${base}/v1/session`],
    connect: (url) => {
      sockets.push(url);
      const ws = new WebSocket(url);
      ws.on('error', () => undefined);
      return ws as unknown as WsLike;
    },
    retryDelayMs: 50,
    // As the browser does it: a fresh single-use ticket from an authenticated POST before each dial.
    dialQuery: async () => {
      fetches++;
      await gate; // the fetch is slow: the browser's online event fires meanwhile
      const res = await fetch(`http://${base}/v1/session/tickets`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.alice}` } });
      if (!res.ok) throw new Error(`ticket refused: HTTP ${res.status}`);
      return { ticket: ((await res.json()) as { ticket: string }).ticket };
    },
    onEvent: (ev) => events.push(ev),
  });
  try {
    const ready = session.open();
    session.sendText('queued before the socket exists');
    for (let i = 0; i < 3; i++) session.reconnectNow(); // what window 'online' events do mid-fetch
    releaseTicket();
    await ready;
    expect(fetches).toBe(1);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).toMatch(/[?&]ticket=/);
    expect(sockets[0]).not.toContain(KEYS.alice);
    await waitFor(() => events.find((e) => e.type === 'turn.accepted'), 'the queued turn is accepted');
  } finally {
    session.close();
  }
});
