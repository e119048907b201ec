/**
 * What prod pins outside the code: model revisions and hashes (charts/models.lock.json). A
 * revision of 40 zeros is a placeholder until an operator pins the commit.
 */
import type { ModelFile, ModelSource } from '../infra';
import modelLock from './models.lock.json';

const ZERO_REVISION = /^0{40}$/;

export interface Pins {
  readonly models: Record<'whisperx' | 'xtts', { readonly repo: string; readonly revision: string; readonly files: readonly ModelFile[] }>;
}

export const PINS: Pins = { models: modelLock as unknown as Pins['models'] };

/** The hub source of a role as the lock pins it. */
export function lockedHubSource(role: 'whisperx' | 'xtts', pins: Pins = PINS, tokenSecret?: { secret: string; key: string }): ModelSource {
  const m = pins.models[role];
  return { kind: 'hub', endpoint: 'https://huggingface.co', repo: m.repo, revision: m.revision, files: m.files, tokenSecret };
}

/** Every placeholder still in the pins, one line each naming the file and the entry. */
export function placeholderPins(pins: Pins = PINS): string[] {
  const out: string[] = [];
  for (const [role, m] of Object.entries(pins.models)) {
    if (ZERO_REVISION.test(m.revision)) out.push(`charts/models.lock.json ${role}: revision of ${m.repo} is a placeholder`);
  }
  return out;
}
