/**
 * Env of `orb smoke --accept` (the CLI and the orb-smoke Job): thresholds of the acceptance check on
 * real weights, rendered from the environment config's `acceptance`.
 */
import { bool, num, str } from './env';

export const ACCEPT_ENV = {
  maxWer: num('ORB_ACCEPT_MAX_WER', {
    doc: 'Highest word error rate of the golden utterances through the deployed ASR',
    default: 0.25,
    min: 0,
    max: 1,
  }),
  maxRoundTripWer: num('ORB_ACCEPT_MAX_RT_WER', {
    doc: 'Highest word error rate of TTS output transcribed back by the deployed ASR',
    default: 0.35,
    min: 0,
    max: 1,
  }),
  testMode: bool('ORB_ACCEPT_TEST_MODE', {
    doc: 'The deployment runs the tiny test models: check the plumbing, not the thresholds',
    default: false,
  }),
  golden: str('ORB_ACCEPT_GOLDEN', {
    doc: 'Folder of the golden utterances (golden.json + WAVs); the image ships /app/share/golden',
    default: '/app/share/golden',
  }),
  voice: str('ORB_ACCEPT_VOICE', { doc: 'TTS voice of the round trip; empty means the deployment default', default: '' }),
} as const;
