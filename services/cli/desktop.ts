/**
 * `orb desktop`: the ORB in its own app window — a Chromium-family browser started with
 * `--app=<gateway>/` and a profile of its own. It stands in for the seed's Electron client: the
 * page is the installable web client the gateway serves (manifest, icons, offline service worker),
 * and the browser already on the machine is the runtime, so there is no binary to ship or patch.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Executable names of Chromium-family browsers looked up on PATH, in this order. */
export const BROWSER_NAMES = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
  'microsoft-edge',
  'microsoft-edge-stable',
  'brave-browser',
] as const;

/** Where macOS and Windows install them (not on PATH there). */
function installedPaths(env: NodeJS.ProcessEnv): string[] {
  const win = [env.PROGRAMFILES, env['PROGRAMFILES(X86)'], env.LOCALAPPDATA].filter((d): d is string => !!d);
  return [
    '/Applications/Chromium.app/Contents/MacOS/Chromium',
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    '/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge',
    ...win.flatMap((d) => [
      join(d, 'Google', 'Chrome', 'Application', 'chrome.exe'),
      join(d, 'Microsoft', 'Edge', 'Application', 'msedge.exe'),
    ]),
  ];
}

export class BrowserNotFoundError extends Error {}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The browser to run: `explicit` (--browser), else ORB_BROWSER, else the first Chromium-family
 * browser on PATH or in the usual install folders. Throws naming everything it looked for.
 */
export function findBrowser(env: NodeJS.ProcessEnv, explicit?: string): string {
  const chosen = explicit ?? env.ORB_BROWSER;
  if (chosen) {
    if (executable(chosen)) return chosen;
    throw new BrowserNotFoundError(`browser '${chosen}' (${explicit ? '--browser' : 'ORB_BROWSER'}) is not an executable file`);
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of BROWSER_NAMES) {
    for (const d of dirs) if (executable(join(d, name))) return join(d, name);
  }
  for (const p of installedPaths(env)) if (executable(p)) return p;
  throw new BrowserNotFoundError(
    `no Chromium-family browser found: looked for ${BROWSER_NAMES.join(', ')} on PATH and in the usual install folders. ` +
      'Install one (Debian/Ubuntu: apt-get install chromium) or name it with --browser PATH or ORB_BROWSER.',
  );
}

/** The app window's own profile, so it never shares cookies, storage or extensions with the user's browser. */
export function defaultProfileDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'orb-desktop');
}

/** The ORB page of a gateway base URL (the gateway serves the client at `/`). */
export function desktopUrl(gateway: string): string {
  return new URL('/', gateway).toString();
}

/** Command-line of the app window: no tabs or address bar, its own profile, no first-run dialogs. */
export function desktopArgs(url: string, profileDir: string, extra: readonly string[] = []): string[] {
  return [`--app=${url}`, `--user-data-dir=${profileDir}`, '--no-first-run', '--no-default-browser-check', ...extra];
}

export interface DesktopLaunch {
  /** The page to open (full URL, query and hash included). */
  readonly url: string;
  readonly browser: string;
  /** @default - defaultProfileDir(process.env) */
  readonly profileDir?: string;
  /** More browser flags (tests: headless, remote debugging, a fake microphone). */
  readonly extraArgs?: readonly string[];
  /** Keep the window running after this process exits. @default true */
  readonly detached?: boolean;
}

/** Starts the app window; returns the browser process. */
export function launchDesktop(opts: DesktopLaunch): ChildProcess {
  const profileDir = opts.profileDir ?? defaultProfileDir(process.env);
  mkdirSync(profileDir, { recursive: true });
  const detached = opts.detached ?? true;
  const child = spawn(opts.browser, desktopArgs(opts.url, profileDir, opts.extraArgs), { detached, stdio: 'ignore' });
  if (detached) child.unref();
  return child;
}
