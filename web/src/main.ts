/**
 * The ORB web client: microphone -> 16 kHz PCM16 over WebSocket /v1/session, live transcript,
 * the five verdicts and the consensus, the reply text, reply audio played as it streams,
 * barge-in, and automatic resume after a dropped connection (session client shared with the CLI).
 * Installable (manifest + service worker, see sw.ts): offline, the window keeps its shell, says
 * so, queues typed turns, and resumes the session from its last seq when the network is back.
 */
import { OrbEvent, OrbSession, WsLike } from '../../services/client/session-client';
import { fromBase64, Microphone, startMicrophone, StreamingPlayer } from './audio';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const hash = new URLSearchParams(location.hash.slice(1));

/** Gateway base: the page's own origin (the gateway serves it at `/`), or `?gateway=` in development. */
const gateway = params.get('gateway') ?? location.origin;
const wsBase = (() => {
  const u = new URL('/v1/session', gateway);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
})();

// Client-side endpointing: an utterance starts above SPEECH_RMS and ends after HANGOVER_MS below it.
const SPEECH_RMS = Number(params.get('speech_rms') ?? 0.02);
const START_FRAMES = 3;
const HANGOVER_MS = Number(params.get('hangover_ms') ?? 700);
const PREROLL_FRAMES = 10;

interface UiState {
  events: OrbEvent[];
  state: string;
  session?: string;
  replica?: string;
  transcript: string;
  verdicts: Record<string, { label: string; confidence: number }>;
  consensus?: unknown;
  reply: string;
  audioChunks: number;
  turnsEnded: number;
  bargeIns: number;
  reconnects: number;
  /** The browser's view of the network (navigator.onLine and its online/offline events). */
  online: boolean;
  /** Typed turns sent while the socket was down; the session client sends them once it is back. */
  queued: number;
  errors: string[];
}

const ui: UiState = {
  events: [],
  state: 'idle',
  transcript: '',
  verdicts: {},
  reply: '',
  audioChunks: 0,
  turnsEnded: 0,
  bargeIns: 0,
  reconnects: 0,
  online: navigator.onLine,
  queued: 0,
  errors: [],
};
// Read by the Chromium test (and handy in devtools).
(window as unknown as { __orb: UiState }).__orb = ui;

let session: OrbSession | undefined;
let mic: Microphone | undefined;
const player = new StreamingPlayer();
let currentTurn: string | undefined;
/** Turns whose audio the user talked over: their remaining chunks are not played. */
const silenced = new Set<string>();

function setOrb(state: 'idle' | 'listening' | 'thinking' | 'speaking'): void {
  $('orb').dataset.state = state;
  $('orb').setAttribute('aria-label', `ORB: ${state}`);
}

function status(text: string): void {
  $('status').textContent = text;
}

function log(ev: OrbEvent): void {
  const li = document.createElement('li');
  const data = ev.type === 'audio' ? '(audio)' : JSON.stringify(ev.data ?? ev).slice(0, 160);
  li.textContent = `${ev.seq ?? '-'} ${ev.type} ${data}`;
  $('log').prepend(li);
}

function renderVerdicts(): void {
  const body = $('verdicts').querySelector('tbody')!;
  body.replaceChildren(
    ...Object.entries(ui.verdicts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([core, v]) => {
        const tr = document.createElement('tr');
        tr.dataset.core = core;
        for (const text of [`core ${core}`, v.label, v.confidence.toFixed(2)]) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }),
  );
}

function newTurn(turn: string | undefined): void {
  if (turn === currentTurn) return;
  currentTurn = turn;
  ui.verdicts = {};
  ui.consensus = undefined;
  ui.reply = '';
  renderVerdicts();
  $('consensus').textContent = '';
  $('reply').textContent = '';
}

function onEvent(ev: OrbEvent): void {
  if (ev.type === 'error') {
    ui.errors.push(`${String(ev.code)}: ${String(ev.message)}`);
    // A late client commit after the gateway's VAD already committed is expected, not news.
    if (!/no audio since the last commit/.test(String(ev.message))) status(`error: ${String(ev.message)}`);
    return;
  }
  if (typeof ev.seq !== 'number') return;
  ui.events.push(ev);
  log(ev);
  const d = (ev.data ?? {}) as Record<string, unknown>;
  switch (ev.type) {
    case 'turn.start':
      newTurn(ev.turn);
      setOrb('thinking');
      break;
    case 'transcript':
      newTurn(ev.turn);
      ui.transcript = String(d.text ?? '');
      $('transcript').textContent = ui.transcript;
      $('transcript').classList.toggle('partial', d.final === false);
      break;
    case 'verdict':
      ui.verdicts[String(d.core)] = { label: String(d.label), confidence: Number(d.confidence) };
      renderVerdicts();
      break;
    case 'reply': {
      ui.reply = String(d.text ?? '');
      ui.consensus = d.consensus;
      $('reply').textContent = ui.reply;
      const c = d.consensus as { label?: string; ratio?: number; agree?: number; of?: number } | number | string | undefined;
      const label = String(d.label ?? (typeof c === 'object' ? c?.label : '') ?? '');
      const ratio = typeof c === 'number' ? c : typeof c === 'object' ? c?.ratio : undefined;
      $('consensus').textContent = `consensus: ${label}${ratio !== undefined ? ` (${Math.round(Number(ratio) * 100)}%)` : ''}`;
      if (!player.playing) setOrb(mic ? 'listening' : 'idle');
      status(`replied · ${mic ? 'listening' : 'connected'} (${session?.replica ?? 'orb'})`);
      break;
    }
    case 'audio': {
      if (!ev.turn || silenced.has(ev.turn)) break;
      const b64 = typeof d.data === 'string' ? d.data : undefined;
      if (!b64) break;
      const rate = Number(/rate=(\d+)/.exec(String(d.content_type ?? ''))?.[1] ?? 22_050);
      setOrb('speaking');
      ui.audioChunks++;
      $('audio-state').textContent = `playing reply audio (${ui.audioChunks} chunk${ui.audioChunks > 1 ? 's' : ''})`;
      void player.enqueue(fromBase64(b64), rate);
      break;
    }
    case 'turn.no_quorum':
      $('reply').textContent = `no quorum (${String(d.received)} of ${String(d.quorum)} verdicts)`;
      break;
    case 'turn.error':
      ui.errors.push(String(d.message ?? d.code));
      $('reply').textContent = `turn failed: ${String(d.message ?? d.code)}`;
      break;
    case 'turn.end':
      ui.turnsEnded++;
      if (!player.playing) setOrb(mic ? 'listening' : 'idle');
      break;
  }
}

player.onIdle = () => {
  setOrb(mic ? 'listening' : 'idle');
  $('audio-state').textContent = ui.audioChunks ? `reply audio played (${ui.audioChunks} chunks)` : '';
};

// ---- microphone: server-side VAD endpointing, local energy detector for barge-in + fallback --------
// The gateway's VAD (Silero) cuts utterances from the continuous stream and says so with
// input_audio.speech_started / input_audio.committed. A gateway without VAD never does: after one
// local utterance without an answer the page falls back to gating and committing itself.
let serverVad = true;
let speaking = false;
let loudFrames = 0;
let lastLoudAt = 0;
let committedSinceLocalStart = false;
const preroll: ArrayBuffer[] = [];

function bargeIn(): void {
  if (player.playing && currentTurn) {
    silenced.add(currentTurn);
    player.stop();
    ui.bargeIns++;
    $('audio-state').textContent = 'reply interrupted';
  }
}

function onControl(ev: OrbEvent): void {
  if (ev.type === 'input_audio.speech_started') {
    bargeIn();
    setOrb('listening');
  }
  if (ev.type === 'input_audio.committed') {
    committedSinceLocalStart = true;
    setOrb('thinking');
    status('thinking…');
  }
}

function onMicFrame(pcm: ArrayBuffer, rms: number): void {
  if (!session) return;
  const loud = rms >= SPEECH_RMS;
  const now = performance.now();
  loudFrames = loud ? loudFrames + 1 : 0;
  if (loud) lastLoudAt = now;
  if (serverVad) session.sendAudio(pcm);
  if (!speaking) {
    if (!serverVad) {
      preroll.push(pcm);
      if (preroll.length > PREROLL_FRAMES) preroll.shift();
    }
    if (loudFrames >= START_FRAMES) {
      speaking = true;
      committedSinceLocalStart = false;
      bargeIn(); // at once, without waiting for the server's speech_started
      setOrb('listening');
      status(`listening… (${session.replica ?? 'connected'})`);
      if (!serverVad) for (const f of preroll.splice(0)) session.sendAudio(f);
    }
    return;
  }
  if (!serverVad) session.sendAudio(pcm);
  if (now - lastLoudAt > HANGOVER_MS) {
    speaking = false;
    if (!serverVad) {
      session.endUtterance(true);
      setOrb('thinking');
      return;
    }
    setTimeout(() => {
      if (committedSinceLocalStart || !session) return;
      // No endpointing from the gateway for a whole utterance: commit it ourselves from now on.
      serverVad = false;
      ui.errors.push('gateway VAD did not endpoint; client-side endpointing');
      session.endUtterance(true);
    }, 1500 + HANGOVER_MS);
  }
}

// ---- connection ---------------------------------------------------------------------------
function browserSocket(url: string): WsLike {
  return new WebSocket(url) as unknown as WsLike;
}

async function wsTicket(apiKey: string): Promise<string> {
  const res = await fetch(new URL('/v1/session/tickets', gateway), { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
  if (!res.ok) throw new Error(`ticket refused: HTTP ${res.status}`);
  return ((await res.json()) as { ticket: string }).ticket;
}

async function connect(apiKey: string): Promise<void> {
  const previous = session;
  previous?.close();
  session = new OrbSession({
    urls: [wsBase],
    connect: browserSocket,
    query: { speak: 'true' },
    // Browsers cannot set Authorization on a WebSocket, and a key in the URL lands in logs: each connect
    // redeems a fresh single-use ticket from an authenticated POST instead. The session client holds
    // one dial at a time, so the online event's reconnectNow cannot start a second socket mid-fetch.
    dialQuery: async () => ({ ticket: await wsTicket(apiKey) }),
    sessionId: previous?.sessionId ?? sessionStorage.getItem('orb.session') ?? undefined,
    lastSeq: previous?.lastSeq ?? Number(sessionStorage.getItem('orb.lastSeq') ?? 0),
    onEvent: (ev) => {
      onControl(ev);
      onEvent(ev);
      if (session?.sessionId) {
        sessionStorage.setItem('orb.session', session.sessionId);
        sessionStorage.setItem('orb.lastSeq', String(session.lastSeq));
      }
    },
    onState: (s, detail) => {
      ui.state = s;
      if (s === 'reconnecting') {
        ui.reconnects++;
        status(ui.online ? `connection lost (${detail ?? ''}) — resuming…` : 'offline — the session resumes when the network is back');
      }
      if (s === 'open') {
        ui.session = session?.sessionId;
        ui.replica = session?.replica;
        ui.queued = 0;
        status(`connected to ${session?.replica ?? 'orb'} · session ${session?.sessionId?.slice(0, 8)}`);
      }
      if (s === 'closed') status(`disconnected ${detail ?? ''}`);
      renderNetwork();
    },
  });
  // Usable while the socket is still down: typed turns queue in the session client.
  for (const id of ['mic', 'text', 'send']) ($(id) as HTMLButtonElement).disabled = false;
  await session.open();
  try {
    const res = await fetch(new URL('/v1/identity', gateway), { headers: { authorization: `Bearer ${apiKey}` } });
    if (res.ok) {
      const body = (await res.json()) as { version?: string; document?: { name?: string } };
      $('identity').textContent = `${body.document?.name ?? ''} v${body.version ?? ''}`;
    }
  } catch {
    /* identity is decoration */
  }
}

$('connect-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = ($('api-key') as HTMLInputElement).value.trim();
  if (!key) {
    status('enter the API key printed by npm run dev');
    return;
  }
  sessionStorage.setItem('orb.apiKey', key);
  connect(key).catch((err: Error) => status(`cannot connect: ${err.message}`));
});

$('mic').addEventListener('click', async () => {
  if (mic) {
    await mic.stop();
    mic = undefined;
    $('mic').textContent = 'Start microphone';
    $('mic').setAttribute('aria-pressed', 'false');
    setOrb('idle');
    return;
  }
  try {
    mic = await startMicrophone(onMicFrame);
    $('mic').textContent = 'Stop microphone';
    $('mic').setAttribute('aria-pressed', 'true');
    setOrb('listening');
    status('listening…');
  } catch (err) {
    status(`microphone: ${(err as Error).message}`);
  }
});

$('text-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('text') as HTMLInputElement;
  const text = input.value.trim();
  if (!text || !session) return;
  session.sendText(text);
  input.value = '';
  if (session.state !== 'open') ui.queued++;
  renderNetwork();
  setOrb('thinking');
});

// ---- offline: the shell stays (service worker), the session waits and resumes ---------------
function renderNetwork(): void {
  const banner = $('network');
  const down = !ui.online || (session !== undefined && session.state !== 'open');
  const queued = ui.queued ? ` ${ui.queued} typed turn${ui.queued > 1 ? 's' : ''} queued.` : '';
  banner.hidden = !down;
  banner.textContent = !ui.online
    ? `Offline. The ORB reconnects and resumes this session when the network is back.${queued}`
    : !down
      ? ''
      : // closed: a refused key or a give-up; Connect (or the network coming back) dials again
        session?.state === 'closed'
        ? `Not connected to the ORB.${queued}`
        : `Not connected to the ORB — retrying.${queued}`;
}

window.addEventListener('offline', () => {
  ui.online = false;
  renderNetwork();
});
window.addEventListener('online', () => {
  ui.online = true;
  renderNetwork();
  session?.reconnectNow(); // no need to wait out the back-off
});
renderNetwork();

// The service worker is what lets the installed window open offline; same origin, scope = this folder.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('sw.js', { scope: './', updateViaCache: 'none' })
    .catch((err: Error) => ui.errors.push(`service worker: ${err.message}`));
}

// `#key=…` (e.g. a link printed by npm run dev) or the key of this tab connects at once.
const initialKey = hash.get('key') ?? sessionStorage.getItem('orb.apiKey');
if (initialKey) {
  ($('api-key') as HTMLInputElement).value = initialKey;
  sessionStorage.setItem('orb.apiKey', initialKey);
  connect(initialKey)
    .then(() => {
      if (params.get('mic') === '1') $('mic').click();
    })
    .catch((err: Error) => status(`cannot connect: ${err.message}`));
}
