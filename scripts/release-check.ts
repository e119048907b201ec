/**
 * `npm run release-check`: gates a deploy. Fails (exit 1, one line per problem) while
 *  - charts/images.json or charts/models.lock.json hold a placeholder,
 *  - a release-pinned environment's dist/ still carries the placeholder header, or runs an image
 *    other than the pinned ones (dist/ rendered before the pins changed: run npm run synth).
 * No registry is contacted: that the digests exist is the release workflow's business.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ENVIRONMENTS } from '../charts/environments';
import { imageRef, PINS, placeholderPins, type Pins } from '../charts/pins';
import { PLACEHOLDER_MARK } from '../charts/render';

function manifests(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((e) => {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) return manifests(p);
      return e.endsWith('.k8s.yaml') ? [p] : [];
    })
    .sort();
}

/** Every image a manifest runs (containers and initContainers of pods, Jobs and CronJobs). */
export function imagesIn(text: string): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
      return;
    }
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'containers' || k === 'initContainers') && Array.isArray(x)) for (const c of x) out.push((c as { image: string }).image);
      else visit(x);
    }
  };
  for (const doc of parseAllDocuments(text)) visit(doc.toJS());
  return out;
}

export function releaseCheck(o: { pins?: Pins; distDir?: string; envs?: readonly string[] } = {}): string[] {
  const pins = o.pins ?? PINS;
  const distDir = o.distDir ?? 'dist';
  const envs =
    o.envs ??
    Object.values(ENVIRONMENTS)
      .filter((e) => e.releasePins)
      .map((e) => e.name);
  const problems = placeholderPins(pins);
  const pinned = new Set(Object.values(pins.images).map(imageRef));
  for (const env of envs) {
    for (const file of manifests(join(distDir, env))) {
      const text = readFileSync(file, 'utf8');
      if (text.startsWith(PLACEHOLDER_MARK)) problems.push(`${file}: rendered with placeholder pins`);
      for (const image of new Set(imagesIn(text))) {
        if (!pinned.has(image)) problems.push(`${file}: runs ${image}, which is not pinned in charts/images.json (run npm run synth)`);
      }
    }
  }
  return problems;
}

if (require.main === module) {
  const problems = releaseCheck();
  for (const p of problems) process.stdout.write(`release-check: ${p}\n`);
  process.stdout.write(problems.length ? `release-check: FAILED, ${problems.length} problem(s): not deployable\n` : 'release-check: OK\n');
  process.exitCode = problems.length ? 1 : 0;
}
