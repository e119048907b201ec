/**
 * Env of the worker runtime shared by every role (core, cali, whisperx, xtts). A worker
 * container gets VAULT_ENV + WORKER_ENV + its role's schema (CORE_ENV, CALI_ENV, ASR/TTS).
 */
import { PORTS } from '../contract';
import { int, oneOf, str } from './env';

export const WORKER_ENV = {
  port: int('PORT', { doc: 'HTTP port of /livez, /readyz, /metrics', default: PORTS.http, min: 1, max: 65535 }),
  podName: str('POD_NAME', { doc: 'Pod name (downward API): the consumer name in the job group, stable across restarts', default: '' }),
  logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
    doc: 'pino log level',
    default: 'info',
  }),
  blockMs: int('ACP_BLOCK_MS', {
    doc: 'BLOCK of each blocking stream read, ms (bounds shutdown latency)',
    default: 2000,
    min: 10,
    max: 60000,
  }),
  concurrency: int('ACP_CONCURRENCY', { doc: 'Jobs in flight per worker process', default: 16, min: 1, max: 1000 }),
  reclaimIdleMs: int('ACP_RECLAIM_IDLE_MS', {
    doc: 'A pending job idle this long is reclaimed from its (dead) consumer, ms. Recovery bound after any single-process fault: ACP_RECLAIM_IDLE_MS + the reclaim interval (half of it) + the time to drain what queued meanwhile; a stuck job is released by its deadline + ACP_OVERRUN_MS, a read hung on a restarted vault within ACP_BLOCK_MS + 2 s (docs/acp.md, Recovery bound)',
    default: 30000,
    min: 50,
  }),
  maxDeliveries: int('ACP_MAX_DELIVERIES', {
    doc: 'Deliveries after which a job goes to the dead-letter stream',
    default: 5,
    min: 1,
    max: 100,
  }),
  doneTtlS: int('ACP_DONE_TTL_S', { doc: 'Seconds a job dedupe record is kept', default: 86400, min: 60 }),
  trimIntervalMs: int('ACP_TRIM_INTERVAL_MS', {
    doc: 'How often job streams are trimmed of acknowledged jobs, ms (0 = never)',
    default: 10000,
    min: 0,
  }),
  overrunMs: int('ACP_OVERRUN_MS', {
    doc: 'A job still running this long past its deadline is aborted, acknowledged as expired and its slot freed, ms (a handler that can no longer finish never pins the queue)',
    default: 5000,
    min: 0,
  }),
  aliveTtlMs: int('ACP_ALIVE_TTL_MS', {
    doc: "Lifetime of the worker's liveness heartbeat (acp:alive:<queue>:<pod>), renewed every third of it while its consumer can take work, ms; CALI reads the cores' to end a turn as no_quorum early",
    default: 6000,
    min: 100,
  }),
  drainTimeoutMs: int('DRAIN_TIMEOUT_MS', {
    doc: 'On SIGTERM, how long in-flight jobs may finish before they are left for reclaim, ms',
    default: 30000,
    min: 0,
  }),
} as const;
