/**
 * Graceful drain for rolling updates. Order matters: readiness flips first (endpoints drop the
 * pod), then WebSocket clients are told to reconnect elsewhere (1012 + resume hint), then
 * app.close() lets in-flight HTTP finish and the vault client flush.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { WS_CLOSE } from './errors';

declare module 'fastify' {
  interface FastifyInstance {
    drain: { draining: boolean; begin(): void; closeSockets(): Promise<void> };
  }
}

/** The close reason a client reads to resume (<= 123 bytes: the limit of a close frame's reason). */
export function resumeHint(sessionId: string | null, lastSeq: number): string {
  return JSON.stringify({ reconnect: true, ...(sessionId ? { session: sessionId, last_seq: lastSeq } : {}) });
}

export const drainPlugin = fp(async (app: FastifyInstance) => {
  const state = {
    draining: false,
    begin() { state.draining = true; },
    async closeSockets() {
      const all = app.liveSessions.all();
      await Promise.all(all.map((s) => new Promise<void>((resolve) => {
        if (s.ws.readyState >= s.ws.CLOSING) return resolve();
        s.ws.once('close', () => resolve());
        s.ws.close(WS_CLOSE.serviceRestart, resumeHint(s.sessionId, s.lastSeq));
        // A client that never answers the close handshake must not hold the drain.
        setTimeout(() => { s.ws.terminate(); resolve(); }, 3000).unref();
      })));
    },
  };
  app.decorate('drain', state);
  // Keep-alive clients must not pin a draining replica: answer, then hang up.
  app.addHook('onSend', async (_req, reply) => { if (state.draining) reply.header('connection', 'close'); });
}, { fastify: '5.x', name: 'orb-drain', dependencies: ['orb-live-sessions'] });

/** SIGTERM path: readiness first, then sockets, then the app (in-flight HTTP, vault flush). */
export async function drainAndClose(app: FastifyInstance, delayMs: number): Promise<void> {
  app.drain.begin();
  app.log.info({ delayMs }, 'draining: readiness off');
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  await app.drain.closeSockets();
  app.log.info('draining: sockets closed, closing app');
  await app.close();
}
