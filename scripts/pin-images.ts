/**
 * Writes pushed image digests into charts/images.json (the release workflow's pin step):
 *   npx tsx scripts/pin-images.ts --version 0.2.0 app=sha256:… gpu=sha256:… redis=sha256:…
 * Every image named must get a real digest; the tag of app and gpu becomes the version.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function pinImages(json: string, version: string, digests: Record<string, string>): string {
  const doc = JSON.parse(json) as Record<string, { repository: string; tag: string; digest: string } | string>;
  for (const [name, digest] of Object.entries(digests)) {
    const pin = doc[name];
    if (!pin || typeof pin === 'string') throw new Error(`charts/images.json has no image '${name}'`);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest) || /^sha256:0{64}$/.test(digest))
      throw new Error(`${name}: '${digest}' is not a pushed image digest`);
    pin.digest = digest;
    if (name !== 'redis') pin.tag = version;
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--version');
  const version = at >= 0 ? args[at + 1] : '';
  if (!/^\d+\.\d+\.\d+([-.][0-9A-Za-z.]+)?$/.test(version)) throw new Error(`--version '${version}' is not a release version`);
  const digests = Object.fromEntries(args.filter((_a, i) => i !== at && i !== at + 1).map((a) => a.split('=') as [string, string]));
  const file = join(__dirname, '..', 'charts', 'images.json');
  writeFileSync(file, pinImages(readFileSync(file, 'utf8'), version, digests));
  process.stdout.write(`pinned ${Object.keys(digests).join(', ')} at ${version} in charts/images.json\n`);
}
