/** Env of CALI (role `cali`): quorum, tie-break and the optional chat endpoint. */
import { int, str } from './env';

export const CALI_ENV = {
  cores: int('CALI_CORES', { doc: 'Number of verdict cores asked per turn', default: 5, min: 1, max: 64 }),
  quorum: int('CALI_QUORUM', { doc: 'Verdicts needed to answer', default: 3, min: 1, max: 64 }),
  tieBreakCore: int('CALI_TIEBREAK_CORE', { doc: 'Ordinal whose verdict breaks ties (the "+1")', default: 4, min: 0, max: 63 }),
  graceMs: int('CALI_QUORUM_GRACE_MS', {
    doc: 'Once quorum is reached, how long to wait for the remaining cores, ms',
    default: 150,
    min: 0,
    max: 10000,
  }),
  livenessCheckMs: int('CALI_LIVENESS_CHECK_MS', {
    doc: "While collecting verdicts, how often the cores' liveness heartbeats (acp:alive:core:<n>) are read; when too few cores are alive to reach quorum the turn ends as no_quorum at once, ms (0 = wait for the vote deadline)",
    default: 250,
    min: 0,
    max: 60000,
  }),
  speakBudgetMs: int('CALI_SPEAK_BUDGET_MS', {
    doc: 'Least time xtts gets to speak a reply, ms (the tts.speak deadline is the later of this and the turn deadline)',
    default: 30000,
    min: 1000,
  }),
  chatUrl: str('CALI_CHAT_URL', {
    doc: 'Base URL of an OpenAI-compatible API (…/v1) for free-form replies; empty = deterministic offline replies',
    default: '',
  }),
  chatModel: str('CALI_CHAT_MODEL', { doc: 'Model name sent to the chat endpoint', default: 'gpt-4o-mini' }),
  chatApiKey: str('CALI_CHAT_API_KEY', { doc: 'Bearer token of the chat endpoint', default: '', secret: true }),
  chatTimeoutMs: int('CALI_CHAT_TIMEOUT_MS', {
    doc: 'Timeout of one chat request, ms (falls back to the offline reply)',
    default: 3000,
    min: 100,
  }),
} as const;
