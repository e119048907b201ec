#!/usr/bin/env node
/**
 * `orb` — the ORB from a terminal: say, ask, sessions, replicas, smoke; `desktop` opens the ORB
 * in an app window.
 * Target: --url / ORB_URL (default http://127.0.0.1:8080) and --api-key / ORB_API_KEY.
 * Exit codes (stable, scripts and the orb-smoke Job rely on them) are in EXIT below.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OrbHttpError, OrbTarget, OrbUnreachableError, nodeWsFactory, orbRequest, sessionWsUrl } from './http';
import { runTurn, syntheticUtterance, TurnResult } from './turn';
import { pcm16ToWav, wavToPcm16k } from './wav';
import { runSmoke } from './smoke';
import { BrowserNotFoundError, defaultProfileDir, desktopUrl, findBrowser, launchDesktop } from './desktop';
import { loadGolden, runAcceptance } from './accept';
import { loadEnv } from '../config/env';
import { ACCEPT_ENV } from '../config/accept';
import { PORTS } from '../contract';

/** A local gateway (npm run dev, npm run orb) listens on the contract's HTTP port. */
const DEFAULT_URL = `http://127.0.0.1:${PORTS.http}`;

export const EXIT = {
  ok: 0,
  /** A check or turn failed (smoke step failed, no quorum, turn error). */
  failed: 1,
  /** Bad command line or input file. */
  usage: 2,
  /** Gateway not reachable (DNS, refused, TLS). */
  unreachable: 3,
  /** API key missing or rejected (401). */
  unauthorized: 4,
  /** The gateway answered with another 4xx/5xx. */
  http: 5,
  /** No answer within --timeout. */
  timeout: 6,
  /** A program the command needs is missing (desktop: no Chromium-family browser). */
  missing: 7,
} as const;

const USAGE = `usage: orb <command> [options]

commands:
  say <text>             a typed turn; prints transcript, verdicts, consensus and reply
  ask <file.wav>         a spoken turn from a WAV file; writes the reply audio (-o, default reply.wav)
  sessions [id]          a session's turn history (default: the session in ORB_SESSION)
  replicas               live orb-core replicas (from their heartbeats in the vault)
  smoke                  health, identity, text turn, audio turn, resume on reconnect
  desktop                opens the ORB in an app window (Chromium/Chrome/Edge --app, own profile);
                         installable from there, and usable offline once opened
  smoke --accept         also the acceptance check on real weights: golden utterances through the
                         ASR (word error rate), TTS round-tripped through the ASR, latency by stage

options:
  --url URL              gateway base URL (env ORB_URL, default ${DEFAULT_URL});
                         repeat or comma-separate to give several replicas (resume fails over)
  --api-key KEY          API key (env ORB_API_KEY)
  --session ID           continue this session (env ORB_SESSION)
  -o, --out FILE         where 'ask' writes the reply WAV (default reply.wav)
  --timeout MS           per-turn limit (default 60000)
  --speak                'say' also asks for reply audio; 'smoke' also requires it
  --wav FILE             the utterance of smoke's audio turn (env ORB_SMOKE_WAV; default the
                         recording baked into the image, else a synthetic vowel)
  --browser PATH         desktop: the browser to run (env ORB_BROWSER; default the first
                         chromium, google-chrome, microsoft-edge, brave-browser found)
  --profile DIR          desktop: the window's own browser profile (default ~/.config/orb-desktop)
  --golden DIR           golden utterances of --accept (env ORB_ACCEPT_GOLDEN, default /app/share/golden)
  --max-wer X            ASR word error rate threshold of --accept (env ORB_ACCEPT_MAX_WER, default 0.25)
  --max-rt-wer X         TTS round-trip WER threshold of --accept (env ORB_ACCEPT_MAX_RT_WER, default 0.35)
  --test-mode            --accept against the tiny test models: plumbing only (env ORB_ACCEPT_TEST_MODE)
  --json                 machine-readable output
  -h, --help

exit codes: 0 ok, 1 check/turn failed, 2 usage, 3 unreachable, 4 unauthorized, 5 other HTTP error, 6 timeout,
            7 a needed program is missing (desktop: no browser)`;

class UsageError extends Error {}

/** Where the image keeps a short real recording for smoke's audio turn (see Dockerfile). */
export const BAKED_SMOKE_WAV = '/app/share/smoke-utterance.wav';

/** Real speech when a recording is at hand (Silero VAD needs speech to cut a segment), else a synthetic vowel. */
function smokeUtterance(file: string | undefined): Buffer {
  const path = file ?? (existsSync(BAKED_SMOKE_WAV) ? BAKED_SMOKE_WAV : undefined);
  if (!path) return syntheticUtterance();
  try {
    return wavToPcm16k(readFileSync(path));
  } catch (err) {
    throw new UsageError(`--wav ${path}: ${(err as Error).message}`);
  }
}

/** --accept's settings: ACCEPT_ENV (the orb-smoke Job renders it), overridden by flags. */
function acceptOptions(v: Record<string, string | boolean | string[] | undefined>, env: NodeJS.ProcessEnv) {
  let cfg;
  try {
    cfg = loadEnv(ACCEPT_ENV, env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const rate = (flag: string, fallback: number) => {
    const raw = v[flag];
    if (raw === undefined) return fallback;
    const x = Number(raw);
    if (!(x >= 0 && x <= 1)) throw new UsageError(`--${flag} must be a word error rate in 0..1, got '${raw}'`);
    return x;
  };
  const dir = (v.golden as string | undefined) ?? cfg.golden;
  let golden;
  try {
    golden = loadGolden(dir);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    golden,
    maxWer: rate('max-wer', cfg.maxWer),
    maxRoundTripWer: rate('max-rt-wer', cfg.maxRoundTripWer),
    testMode: !!v['test-mode'] || cfg.testMode,
    voice: cfg.voice || undefined,
  };
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

function printTurn(io: CliIo, r: TurnResult, json: boolean): void {
  if (json) {
    io.out(JSON.stringify({ ...r, audio: undefined, audioBytes: r.audio.length, events: r.events.length }, null, 2));
    return;
  }
  io.out(`session    ${r.session}`);
  if (r.transcript !== undefined) io.out(`transcript ${r.transcript}`);
  for (const v of r.verdicts) io.out(`verdict    core ${v.core}: ${v.label} (${Number(v.confidence).toFixed(2)})`);
  if (r.consensus !== undefined) io.out(`consensus  ${typeof r.consensus === 'string' ? r.consensus : JSON.stringify(r.consensus)}`);
  if (r.reply !== undefined) io.out(`reply      ${r.reply}`);
  if (r.audio.length) io.out(`audio      ${(r.audio.length / 2 / r.audioSampleRate).toFixed(2)} s at ${r.audioSampleRate} Hz`);
  if (r.outcome !== 'ok') io.out(`outcome    ${r.outcome}${r.error ? `: ${r.error}` : ''}`);
}

/** `orb desktop`: checks the gateway serves the client (a down one is fine: the window has its cache), opens the window. */
async function desktop(io: CliIo, gateway: string, browserOpt: string | undefined, profileOpt: string | undefined): Promise<number> {
  let browser: string;
  try {
    browser = findBrowser(io.env, browserOpt);
  } catch (err) {
    if (err instanceof BrowserNotFoundError) {
      io.err(err.message);
      return EXIT.missing;
    }
    throw err;
  }
  const url = desktopUrl(gateway);
  const manifest = await fetch(new URL('manifest.webmanifest', url), { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  if (manifest && !manifest.ok) {
    io.err(
      `${url} serves no web client (manifest.webmanifest: HTTP ${manifest.status}); the gateway needs ORB_WEB_ROOT built by npm run build:web`,
    );
    return EXIT.http;
  }
  if (!manifest)
    io.err(
      `note: ${url} is not reachable now; the window opens from its offline copy if it has been opened before, and connects once the gateway answers`,
    );
  const profileDir = profileOpt ?? defaultProfileDir(io.env);
  const child = launchDesktop({ url, browser, profileDir });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  io.out(`opened ${url} in an app window (${browser}, profile ${profileDir})`);
  return EXIT.ok;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string', multiple: true },
        'api-key': { type: 'string' },
        session: { type: 'string' },
        out: { type: 'string', short: 'o' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        speak: { type: 'boolean' },
        wav: { type: 'string' },
        browser: { type: 'string' },
        profile: { type: 'string' },
        accept: { type: 'boolean' },
        'test-mode': { type: 'boolean' },
        golden: { type: 'string' },
        'max-wer': { type: 'string' },
        'max-rt-wer': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const {
    values: v,
    positionals: [cmd, ...rest],
  } = parsed;
  if (v.help || !cmd) {
    (v.help ? io.out : io.err)(USAGE);
    return v.help ? EXIT.ok : EXIT.usage;
  }

  const urls = (v.url ?? [io.env.ORB_URL ?? DEFAULT_URL])
    .flatMap((u) => u.split(','))
    .map((u) => u.trim())
    .filter(Boolean);
  const apiKey = v['api-key'] ?? io.env.ORB_API_KEY ?? '';
  const timeoutMs = Number(v.timeout ?? 60_000);
  const json = !!v.json;
  const target: OrbTarget = { url: urls[0], apiKey, timeoutMs };
  const connect = nodeWsFactory(apiKey);

  try {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new UsageError(`--timeout must be a positive number of ms, got '${v.timeout}'`);
    for (const u of urls) {
      try {
        new URL(u);
      } catch {
        throw new UsageError(`--url '${u}' is not a URL`);
      }
    }
    const wsUrls = urls.map(sessionWsUrl);
    if (!['say', 'ask', 'sessions', 'replicas', 'smoke', 'desktop'].includes(cmd)) throw new UsageError(`unknown command '${cmd}'`);
    // The window asks for the key itself (it never travels on a command line).
    if (cmd === 'desktop') return await desktop(io, urls[0], v.browser, v.profile);
    // Every route but the probes needs a key; say so before any network round trip.
    if (!apiKey) {
      io.err('no API key: pass --api-key or set ORB_API_KEY');
      return EXIT.unauthorized;
    }
    switch (cmd) {
      case 'say': {
        const text = rest.join(' ').trim();
        if (!text) throw new UsageError('say needs the text to say');
        const r = await runTurn({ urls: wsUrls, connect, text, sessionId: v.session ?? io.env.ORB_SESSION, timeoutMs, speak: v.speak });
        printTurn(io, r, json);
        return r.outcome === 'ok' ? EXIT.ok : r.error?.includes('did not end') ? EXIT.timeout : EXIT.failed;
      }
      case 'ask': {
        const file = rest[0];
        if (!file) throw new UsageError('ask needs a WAV file');
        let wav: Buffer;
        try {
          wav = readFileSync(file);
        } catch (err) {
          throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
        }
        let pcm: Buffer;
        try {
          pcm = wavToPcm16k(wav);
        } catch (err) {
          throw new UsageError(`${file}: ${(err as Error).message}`);
        }
        const r = await runTurn({ urls: wsUrls, connect, pcm, sessionId: v.session ?? io.env.ORB_SESSION, timeoutMs, speak: true });
        printTurn(io, r, json);
        const out = v.out ?? 'reply.wav';
        if (r.audio.length) {
          writeFileSync(out, pcm16ToWav(r.audio, r.audioSampleRate));
          if (!json) io.out(`wrote      ${out}`);
        } else if (r.outcome === 'ok') {
          io.err('the turn ended without reply audio');
          return EXIT.failed;
        }
        return r.outcome === 'ok' ? EXIT.ok : r.error?.includes('did not end') ? EXIT.timeout : EXIT.failed;
      }
      case 'sessions': {
        const id = rest[0] ?? v.session ?? io.env.ORB_SESSION;
        if (!id) {
          // Sessions live in the vault, not in replicas; without an id, show who holds live sockets.
          const res = await orbRequest<{ replicas: Array<{ pod: string; sessions: number; sockets: number }> }>(
            target,
            'GET',
            '/v1/replicas',
          );
          if (json)
            io.out(
              JSON.stringify(
                res.body.replicas.map(({ pod, sessions, sockets }) => ({ pod, sessions, sockets })),
                null,
                2,
              ),
            );
          else for (const r of res.body.replicas) io.out(`${r.pod.padEnd(24)} ${r.sessions} live session(s), ${r.sockets} socket(s)`);
          if (!json) io.out("(orb sessions <id> shows one session's turns)");
          return EXIT.ok;
        }
        type Hist = {
          id: string;
          created_at: string;
          last_seq: number;
          turns: Array<{ turn: string; source: string; transcript: string | null; reply: string | null; outcome: string | null }>;
        };
        const res = await orbRequest<Hist>(target, 'GET', `/v1/sessions/${encodeURIComponent(id)}`);
        if (json) {
          io.out(JSON.stringify(res.body, null, 2));
          return EXIT.ok;
        }
        io.out(`session ${res.body.id}  created ${res.body.created_at}  last seq ${res.body.last_seq}`);
        for (const t of res.body.turns ?? []) {
          io.out(`- ${t.turn} [${t.source || '?'}] ${t.outcome ?? 'open'}`);
          if (t.transcript !== null) io.out(`    you: ${t.transcript}`);
          if (t.reply !== null) io.out(`    orb: ${t.reply}`);
        }
        return EXIT.ok;
      }
      case 'replicas': {
        const res = await orbRequest<{ replicas?: unknown[] } | unknown[]>(target, 'GET', '/v1/replicas');
        const list = (Array.isArray(res.body) ? res.body : ((res.body as { replicas?: unknown[] }).replicas ?? [])) as Array<
          Record<string, unknown>
        >;
        if (json) io.out(JSON.stringify(res.body, null, 2));
        else
          for (const r of list)
            io.out(
              Object.entries(r)
                .map(([k, x]) => `${k}=${typeof x === 'object' ? JSON.stringify(x) : x}`)
                .join('  '),
            );
        return EXIT.ok;
      }
      case 'smoke': {
        const accept = v.accept ? acceptOptions(v, io.env) : undefined;
        const ok = await runSmoke({
          target,
          urls,
          wsUrls,
          connect,
          timeoutMs,
          log: io.out,
          utterance: smokeUtterance(v.wav ?? io.env.ORB_SMOKE_WAV),
          speak: v.speak,
        });
        if (!accept) return ok ? EXIT.ok : EXIT.failed;
        const report = await runAcceptance({ ...accept, target, wsUrls, connect, timeoutMs, log: io.out });
        return ok && report.passed ? EXIT.ok : EXIT.failed;
      }
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    if (err instanceof OrbUnreachableError) {
      io.err(err.message);
      return EXIT.unreachable;
    }
    if (err instanceof OrbHttpError) {
      io.err(err.message);
      return err.status === 401 ? EXIT.unauthorized : err.status === 0 ? EXIT.timeout : EXIT.http;
    }
    const msg = (err as Error).message ?? String(err);
    io.err(msg);
    if (/4401|401/.test(msg)) return EXIT.unauthorized;
    if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|gave up reconnecting/.test(msg)) return EXIT.unreachable;
    return EXIT.failed;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    env: process.env,
  }).then((code) => {
    process.exitCode = code;
  });
}
