/** WebSocket tickets: the key stays out of URLs; a ticket works once, on any replica, for a short while. */
import type { FastifyInstance } from 'fastify';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import WebSocket from 'ws';
import { OrbSession, WsLike } from '../../../services/client/session-client';
import { auth, Client, http, listen, makeApp, waitFor } from './support';

const prefix = uniquePrefix('ticket');
const redis = testRedis();
let A: FastifyInstance;
let B: FastifyInstance;
let a: string;
let b: string;

beforeAll(async () => {
  A = await makeApp(prefix, 'orb-ticket-a', { ORB_WS_TICKET_TTL_MS: '1000' });
  B = await makeApp(prefix, 'orb-ticket-b', { ORB_WS_TICKET_TTL_MS: '1000' });
  a = await listen(A);
  b = await listen(B);
});
afterAll(async () => {
  await A.close();
  await B.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

const ticketFrom = async (host: string, who: 'alice' | 'bob' = 'alice') => {
  const res = await http(host, { method: 'POST', url: '/v1/session/tickets', headers: auth(who) });
  expect(res.statusCode).toBe(201);
  expect(res.headers['cache-control']).toBe('no-store');
  return res.json() as { ticket: string; expires_in_ms: number; websocket: string };
};

test('issued only for a key; redeemed once, on another replica, as the key that asked', async () => {
  const none = await http(a, { method: 'POST', url: '/v1/session/tickets' });
  expect({ s: none.statusCode, c: none.json().code }).toEqual({ s: 401, c: 'ORB_ERR_UNAUTHORIZED' });
  const t = await ticketFrom(a);
  expect(t).toMatchObject({ expires_in_ms: 1000, websocket: `/v1/session?ticket=${t.ticket}` });
  // The vault holds the ticket's digest, not the ticket.
  const stored = await redis.keys(`${prefix}orb:ticket:*`);
  expect(stored).toHaveLength(1);
  expect(stored[0]).not.toContain(t.ticket);

  const c = new Client(b, `/v1/session?ticket=${t.ticket}&vad=false`);
  const ready = await c.next((m) => m.type === 'session.ready', 'ready');
  expect(await redis.hget(`${prefix}session:${ready.session}`, 'owner')).toBe('alice');
  await c.close();

  const again = new Client(a, `/v1/session?ticket=${t.ticket}`);
  await again.opened.catch(() => undefined);
  expect({ s: again.refusedStatus, c: JSON.parse(again.refusedBody).code }).toEqual({ s: 401, c: 'ORB_ERR_UNAUTHORIZED' });
});

test('an expired or made-up ticket is refused', async () => {
  const t = await ticketFrom(a);
  await new Promise((r) => setTimeout(r, 1200));
  for (const ticket of [t.ticket, 'A'.repeat(43), 'short', `${t.ticket}x`, 'A'.repeat(65)]) {
    const c = new Client(b, `/v1/session?ticket=${encodeURIComponent(ticket)}`);
    await c.opened.catch(() => undefined);
    expect([c.refusedStatus, JSON.parse(c.refusedBody).code]).toEqual([401, 'ORB_ERR_UNAUTHORIZED']);
  }
});

test('break it: 20 upgrades racing with one ticket over two replicas, exactly one gets in (x10 tickets)', async () => {
  let wins = 0;
  let refused = 0;
  for (let round = 0; round < 10; round++) {
    const t = await ticketFrom(round % 2 ? a : b);
    const clients = Array.from({ length: 20 }, (_, i) => new Client(i % 2 ? a : b, `/v1/session?ticket=${t.ticket}&vad=false`));
    const opened = await Promise.all(
      clients.map((c) =>
        c.opened.then(
          () => true,
          () => false,
        ),
      ),
    );
    wins += opened.filter(Boolean).length;
    refused += clients.filter((c) => c.refusedStatus === 401).length;
    expect(opened.filter(Boolean)).toHaveLength(1);
    await Promise.all(clients.map((c) => c.close()));
  }
  console.log(`ticket race: 200 upgrades with 10 tickets, ${wins} admitted, ${refused} refused 401`);
  expect(refused).toBe(190);
});

test('the session client fetches a fresh ticket for every connect, so a reconnect after a drain gets in', async () => {
  const fetched: string[] = [];
  // A plain socket factory, like a browser's: no Authorization header, only the ticket in the query.
  const session = new OrbSession({
    urls: [`ws://${a}/v1/session`, `ws://${b}/v1/session`],
    connect: (url) => new WebSocket(url) as unknown as WsLike,
    query: { vad: 'false' },
    dialQuery: async () => {
      const t = await ticketFrom(fetched.length % 2 ? b : a);
      fetched.push(t.ticket);
      return { ticket: t.ticket };
    },
    retryDelayMs: 50,
  });
  try {
    await session.open();
    const first = session.replica;
    await A.drain.closeSockets(); // 1012: the client resumes on the other URL with a new ticket
    await waitFor(() => session.replica !== first && session.state === 'open', 'resumed on the other replica');
    expect(fetched.length).toBeGreaterThanOrEqual(2);
    expect(new Set(fetched).size).toBe(fetched.length);
  } finally {
    session.close();
  }
});
