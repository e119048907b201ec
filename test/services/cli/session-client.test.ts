/**
 * OrbSession.reconnectNow, which the web client calls when the browser says the network is back:
 * after the session client has given up on a down gateway, it dials again at once, resumes the
 * same session from its last seq and sends the text turn queued meanwhile. Real gateway, real
 * socket, real Redis; the gateway goes down and comes back on the same port.
 */
import type { FastifyInstance } from 'fastify';
import { nodeWsFactory } from '../../../services/cli/http';
import { OrbEvent, OrbSession, SessionState } from '../../../services/cli/session-client';
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
