/**
 * Graceful drain for rolling updates. Order matters: readiness flips first (endpoints drop the
 * pod), then WebSocket clients are told to reconnect elsewhere (1012 + resume hint), then
 * app.close() lets in-flight HTTP finish and the vault client flush.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { WS_CLOSE } from './errors';

/** How long a socket gets to answer the close handshake before it is cut. */
export const WS_CLOSE_GRACE_MS = 3000;

declare module 'fastify' {
  interface FastifyInstance {
    drain: { draining: boolean; begin(): void; closeSockets(): Promise<void> };
  }
}

/** The close reason a client reads to resume (<= 123 bytes: the limit of a close frame's reason). */
export function resumeHint(sessionId: string | null, lastSeq: number): string {
  return JSON.stringify({ reconnect: true, ...(sessionId ? { session: sessionId, last_seq: lastSeq } : {}) });
}

export const drainPlugin = fp(
  async (app: FastifyInstance) => {
    const state = {
      draining: false,
      begin() {
        state.draining = true;
      },
      async closeSockets() {
        // Sessions get the resume hint; every other socket of the ws server (one still upgrading or
        // authenticating, one already CLOSING) is waited on too. A peer that never answers the close
        // handshake (gone, offline) would otherwise hold app.close() for ws's own 30 s close timeout.
        const hints = new Map(app.liveSessions.all().map((s) => [s.ws, resumeHint(s.sessionId, s.lastSeq)] as const));
        const sockets = new Set<WebSocket>([...hints.keys(), ...(app.websocketServer?.clients ?? [])]);
        await Promise.all(
          [...sockets].map(
            (ws) =>
              new Promise<void>((resolve) => {
                if (ws.readyState === ws.CLOSED) return resolve();
                const timer = setTimeout(() => {
                  ws.terminate();
                  resolve();
                }, WS_CLOSE_GRACE_MS);
                timer.unref();
                ws.once('close', () => {
                  clearTimeout(timer);
                  resolve();
                });
                if (ws.readyState === ws.OPEN) ws.close(WS_CLOSE.serviceRestart, hints.get(ws) ?? resumeHint(null, 0));
              }),
          ),
        );
      },
    };
    app.decorate('drain', state);
    // Keep-alive clients must not pin a draining replica: answer, then hang up.
    app.addHook('onSend', async (_req, reply) => {
      if (state.draining) reply.header('connection', 'close');
    });
  },
  { fastify: '5.x', name: 'orb-drain', dependencies: ['orb-live-sessions'] },
);

/** SIGTERM path: readiness first, then sockets, then the app (in-flight HTTP, vault flush). */
export async function drainAndClose(app: FastifyInstance, delayMs: number): Promise<void> {
  app.drain.begin();
  app.log.info({ delayMs }, 'draining: readiness off');
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  await app.drain.closeSockets();
  app.log.info('draining: sockets closed, closing app');
  await app.close();
}
