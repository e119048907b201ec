/**
 * Request parameters of the audio routes checked against what the models can do, before any job is
 * queued: a worker that cannot honour a parameter would only fail (and be retried) after the fact.
 */
import { ORB_ERR_UNSUPPORTED_PARAMETER } from './errors';

/** Whisper's language tokens (multilingual checkpoints, large-v3 adds `yue`): what `language` may name. */
export const WHISPER_LANGUAGES: ReadonlySet<string> = new Set(
  (
    'en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la mi ml cy sk te fa ' +
    'lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn ' +
    'mt sa lb my bo tl mg as tt haw ln ha ba jw su yue'
  ).split(' '),
);

/** What the deployed speech models accept. */
export interface AudioCapabilities {
  /** Languages the ASR model has tokens for. @default WHISPER_LANGUAGES */
  readonly languages: ReadonlySet<string>;
}

export const DEFAULT_CAPABILITIES: AudioCapabilities = { languages: WHISPER_LANGUAGES };

/** Capabilities from ORB_ASR_LANGUAGES: empty means the full Whisper set; a code outside it is a config error. */
export function capabilitiesFrom(languages: string): AudioCapabilities {
  const list = languages
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!list.length) return DEFAULT_CAPABILITIES;
  const unknown = list.filter((l) => !WHISPER_LANGUAGES.has(l));
  if (unknown.length) throw new Error(`ORB_ASR_LANGUAGES names languages Whisper has no token for: ${unknown.join(', ')}`);
  return { languages: new Set(list) };
}

/** `language` must name a language the ASR model has a token for. */
export function checkLanguage(v: string, caps: AudioCapabilities = DEFAULT_CAPABILITIES): void {
  if (!caps.languages.has(v)) {
    throw new ORB_ERR_UNSUPPORTED_PARAMETER(`language '${clip(v)}' (the ASR model knows ${caps.languages.size} ISO-639-1 codes, e.g. en)`);
  }
}

const clip = (s: string) => s.slice(0, 40).replace(/[^\x20-\x7e]/g, '?');
