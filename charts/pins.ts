/**
 * What prod pins outside the code: image digests (charts/images.json, written by the release
 * workflow) and model revisions (charts/models.lock.json). Both may hold placeholders while
 * nothing has been released: synth warns and marks the rendered files, release-check refuses.
 */
import type { ModelFile, ModelSource } from '../infra';
import images from './images.json';
import modelLock from './models.lock.json';
import tinyLock from './models.tiny.lock.json';

export interface ImagePin {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

export type ImageName = 'app' | 'gpu' | 'redis';

const ZERO_DIGEST = /^sha256:0{64}$/;
const ZERO_REVISION = /^0{40}$/;

export interface Pins {
  readonly images: Record<ImageName, ImagePin>;
  readonly models: Record<'whisperx' | 'xtts', { readonly repo: string; readonly revision: string; readonly files: readonly ModelFile[] }>;
}

export const PINS: Pins = { images: images as unknown as Pins['images'], models: modelLock as unknown as Pins['models'] };

/**
 * The tiny test models as the pod runner's stand-in hub serves them (charts/models.tiny.lock.json):
 * real revisions and sha256, checked against the bytes by test/tools/pods/model-hub.test.ts.
 */
export const TINY_MODEL_PINS: Pins = { images: PINS.images, models: tinyLock as unknown as Pins['models'] };

/** `repository:tag@digest`, the reference prod renders. */
export function imageRef(pin: ImagePin): string {
  return `${pin.repository}:${pin.tag}@${pin.digest}`;
}

/** The hub source of a role as the lock pins it. */
export function lockedHubSource(
  role: 'whisperx' | 'xtts',
  pins: Pins = PINS,
  tokenSecret?: { secret: string; key: string },
  endpoint = 'https://huggingface.co',
): ModelSource {
  const m = pins.models[role];
  return { kind: 'hub', endpoint, repo: m.repo, revision: m.revision, files: m.files, tokenSecret };
}

/** Every placeholder still in the pins, one line each naming the file and the entry. */
export function placeholderPins(pins: Pins = PINS): string[] {
  const out: string[] = [];
  for (const [name, pin] of Object.entries(pins.images)) {
    if (ZERO_DIGEST.test(pin.digest)) out.push(`charts/images.json ${name}: digest is a placeholder (${pin.repository}:${pin.tag})`);
  }
  for (const [role, m] of Object.entries(pins.models)) {
    if (ZERO_REVISION.test(m.revision)) out.push(`charts/models.lock.json ${role}: revision of ${m.repo} is a placeholder`);
  }
  return out;
}
