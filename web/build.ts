/**
 * `npm run build:web`: bundles the ORB web client into web/dist (index.html, orb.css, app.js)
 * with esbuild — one small IIFE, no framework. The gateway serves web/dist at `/`.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export const WEB_ROOT = __dirname;
export const WEB_DIST = join(__dirname, 'dist');

export async function buildWeb(outDir = WEB_DIST): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(WEB_ROOT, 'src', 'main.ts'), 'capture-worklet': join(WEB_ROOT, 'src', 'capture-worklet.ts') },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    outdir: outDir,
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'orb.css']) copyFileSync(join(WEB_ROOT, f), join(outDir, f));
  return outDir;
}

if (require.main === module) {
  buildWeb().then((dir) => process.stdout.write(`web client built into ${dir}\n`), (err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
