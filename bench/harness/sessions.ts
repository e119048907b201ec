/** Idle WebSocket sessions for the ws and memory benchmarks: open until `session.ready`, in parallel batches. */
import { WebSocket } from 'ws';

export interface SessionTarget {
  readonly name: string;
  readonly wsUrl: string;
  readonly headers: Record<string, string>;
}

/** One socket that the server has answered with `session.ready` (rejects on a refusal or after 30 s). */
export async function openSession(t: SessionTarget): Promise<WebSocket> {
  const ws = new WebSocket(t.wsUrl, { headers: t.headers, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${t.name}: no session.ready within 30 s`)), 30_000);
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`${t.name}: upgrade refused with HTTP ${res.statusCode}`));
    });
    ws.on('message', function ready(data, isBinary) {
      if (isBinary) return;
      const m = JSON.parse(String(data)) as { type: string; message?: string };
      if (m.type === 'session.ready') {
        clearTimeout(timer);
        ws.off('message', ready);
        resolve();
      }
      if (m.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${t.name}: ${m.message}`));
      }
    });
  });
  return ws;
}

/** `n` ready sockets, `parallel` at a time; on a failure the ones already open are closed. */
export async function openSessions(t: SessionTarget, n: number, parallel = 50): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  try {
    for (let i = 0; i < n; i += parallel)
      out.push(...(await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, () => openSession(t)))));
  } catch (err) {
    closeAll(out);
    throw err;
  }
  return out;
}

export function closeAll(sockets: readonly WebSocket[]): void {
  for (const s of sockets) s.terminate();
}
