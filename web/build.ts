/**
 * `npm run build:web`: bundles the ORB web client into web/dist with esbuild — one small IIFE, no
 * framework — plus what makes it an installable app: the web app manifest, its PNG icons (drawn
 * here, see icons.ts) and the service worker (sw.js) that keeps the app shell usable offline.
 * The gateway serves web/dist at `/`.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { orbIcons } from './icons';

export const WEB_ROOT = __dirname;
export const WEB_DIST = join(__dirname, 'dist');

const TARGET = ['chrome110', 'firefox115', 'safari16'];
const STATIC = ['index.html', 'orb.css', 'manifest.webmanifest'];

/** The files the service worker precaches: everything the window needs to open without a network. */
export const SHELL_FILES = ['index.html', 'orb.css', 'app.js', 'capture-worklet.js', 'manifest.webmanifest', ...Object.keys(orbIcons())];

export async function buildWeb(outDir = WEB_DIST): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(WEB_ROOT, 'src', 'main.ts'), 'capture-worklet': join(WEB_ROOT, 'src', 'capture-worklet.ts') },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: TARGET,
    outdir: outDir,
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  });
  for (const f of STATIC) copyFileSync(join(WEB_ROOT, f), join(outDir, f));
  for (const [name, png] of Object.entries(orbIcons())) writeFileSync(join(outDir, name), png);
  await writeServiceWorker(outDir);
  return outDir;
}

/** Shell version: a hash of the shell files as built, so any change to them is a new sw.js. */
export function shellVersion(outDir: string): string {
  const h = createHash('sha256');
  for (const f of SHELL_FILES)
    h.update(f)
      .update('\0')
      .update(readFileSync(join(outDir, f)))
      .update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Writes sw.js for the shell files now in `outDir` (the last step of every build). */
export async function writeServiceWorker(outDir: string): Promise<string> {
  const version = shellVersion(outDir);
  await build({
    entryPoints: { sw: join(WEB_ROOT, 'src', 'sw.ts') },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: TARGET,
    outdir: outDir,
    minify: true,
    logLevel: 'warning',
    define: { ORB_SHELL: JSON.stringify({ version, files: SHELL_FILES }) },
  });
  return version;
}

if (require.main === module) {
  buildWeb().then(
    (dir) => process.stdout.write(`web client built into ${dir} (shell ${shellVersion(dir)})\n`),
    (err) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
