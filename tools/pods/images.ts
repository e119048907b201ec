/**
 * Image → local stand-in. No container engine runs here, so each image the manifests name maps to
 * files on this machine: the app image to the repository's own build laid out as the Dockerfile's
 * `cpu` stage lays it out, the redis image to Debian's redis-server. An image not in this table
 * is an error, never a skip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { runSync } from './sh';

export interface LocalImage {
  /** The table row that matched. */
  readonly name: string;
  readonly workdir: string;
  /** The image's own ENV (the container's env wins). */
  readonly env: Record<string, string>;
  /** Files and folders laid out read-only in the container's root: target → host source. */
  readonly layout: ReadonlyArray<{ target: string; source: string }>;
  /** USER of the image (uid:gid), ENTRYPOINT and CMD. */
  readonly user?: { uid: number; gid: number };
  readonly entrypoint?: string[];
  readonly cmd?: string[];
  /** Differences from the real image worth printing once. */
  readonly notes: string[];
}

interface DockerStage {
  env: Record<string, string>;
  workdir: string;
  copies: string[];
  user?: { uid: number; gid: number };
  cmd?: string[];
  entrypoint?: string[];
}

/** ENV, WORKDIR and COPY destinations of one stage of the Dockerfile. */
export function readDockerStage(dockerfile: string, stage: string): DockerStage {
  const lines = readFileSync(dockerfile, 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/);
  let inStage = false;
  const out: DockerStage = { env: {}, workdir: '/', copies: [] };
  for (const raw of lines) {
    const line = raw.trim();
    if (/^FROM\s/i.test(line)) {
      inStage = new RegExp(`\\sAS\\s+${stage}\\s*$`, 'i').test(line);
      continue;
    }
    if (!inStage || line.startsWith('#')) continue;
    const [instr, ...rest] = line.split(/\s+/);
    const args = rest.filter((a) => !a.startsWith('--'));
    switch (instr.toUpperCase()) {
      case 'ENV':
        for (const kv of args) {
          const i = kv.indexOf('=');
          if (i > 0) out.env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        break;
      case 'WORKDIR':
        out.workdir = args[0];
        break;
      case 'USER': {
        const [u, g] = args[0].split(':').map(Number);
        out.user = { uid: u, gid: g ?? u };
        break;
      }
      case 'CMD':
        out.cmd = JSON.parse(rest.join(' '));
        break;
      case 'ENTRYPOINT':
        out.entrypoint = JSON.parse(rest.join(' '));
        break;
      case 'COPY': {
        let dest = args[args.length - 1];
        if (dest.endsWith('/') || dest === '.') dest = join(dest, basename(args[0]));
        out.copies.push(dest.startsWith('/') ? dest : join(out.workdir, dest));
        break;
      }
    }
  }
  if (!inStage && out.copies.length === 0 && Object.keys(out.env).length === 0) throw new Error(`${dockerfile}: no stage '${stage}'`);
  return out;
}

/** Where each path the app image's `cpu` stage copies comes from on this machine. */
function appSources(repo: string, stateDir: string): Record<string, string> {
  return {
    '/app/node_modules': join(repo, 'node_modules'),
    '/app/build': join(repo, 'build'),
    '/app/web/dist': join(repo, 'web/dist'),
    '/app/models/tiny': join(stateDir, 'image/tiny-models'),
    '/app/package.json': join(repo, 'package.json'),
    '/app/models/core': join(repo, 'models/core'),
    '/app/share/smoke-utterance.wav': join(repo, 'test/fixtures/speech-16k.wav'),
    '/app/share/golden': join(repo, 'test/fixtures/golden'),
  };
}

const REDIS_TAG = /^(?:docker\.io\/)?(?:library\/)?redis:([0-9.]+)/;
const APP_IMAGE = /^(?:[^/]+\/)*ucm4\/orb(?::[^@]+)?(?:@sha256:[0-9a-f]{64})?$/;

export class ImageTable {
  private readonly cache = new Map<string, LocalImage>();
  constructor(
    private readonly repo: string,
    private readonly stateDir: string,
  ) {}

  resolve(image: string): LocalImage {
    const hit = this.cache.get(image);
    if (hit) return hit;
    const img = this.lookup(image);
    this.cache.set(image, img);
    return img;
  }

  private lookup(image: string): LocalImage {
    if (APP_IMAGE.test(image)) {
      const stage = readDockerStage(join(this.repo, 'Dockerfile'), 'cpu');
      const sources = appSources(this.repo, this.stateDir);
      const layout = stage.copies.map((target) => {
        const source = sources[target];
        if (!source)
          throw new Error(
            `Dockerfile stage 'cpu' copies to ${target}, which the pod runner's image table (tools/pods/images.ts) does not lay out`,
          );
        return { target, source };
      });
      return {
        name: 'ucm4/orb (cpu stage)',
        workdir: stage.workdir,
        env: stage.env,
        layout,
        user: stage.user,
        cmd: stage.cmd,
        entrypoint: stage.entrypoint,
        notes: ["app image: this checkout's build/ and web/dist, with the dev node_modules (the image has production ones only)"],
      };
    }
    const m = REDIS_TAG.exec(image);
    if (m) {
      const local = runSync('redis-server', ['--version']).match(/v=([0-9.]+)/)?.[1] ?? 'unknown';
      const notes =
        local.split('.').slice(0, 2).join('.') === m[1].split('.').slice(0, 2).join('.')
          ? []
          : [`${image}: Debian's redis-server ${local} stands in for Redis ${m[1]} (7.0 has no 7.2+/7.4 features; the manifests use none)`];
      return {
        name: 'redis (Debian redis-server)',
        workdir: '/data',
        env: {},
        layout: [],
        notes,
        user: { uid: 0, gid: 0 },
        cmd: ['redis-server'],
      };
    }
    throw new Error(`image ${image} has no local stand-in in the pod runner's image table (tools/pods/images.ts)`);
  }

  /**
   * Builds what the app image holds: compiled services, web client, tiny speech models. `built`
   * says build/ and web/dist are already this checkout's (a previous step of the same CI run built
   * them), so only the tiny models are made.
   */
  static prepareApp(repo: string, stateDir: string, log: (s: string) => void, o: { built?: boolean } = {}): void {
    const step = (what: string, cmd: string, args: string[]) => {
      log(`image: ${what}`);
      runSync(cmd, args);
    };
    if (o.built) log('image: build/ and web/dist as built (ORBPODS_BUILT=1)');
    else {
      step('npm run build (tsc → build/)', 'npm', ['run', '-s', '--prefix', repo, 'build']);
      step('npm run build:web (web/dist)', 'npm', ['run', '-s', '--prefix', repo, 'build:web']);
    }
    const tiny = join(stateDir, 'image/tiny-models');
    if (!existsSync(join(tiny, 'whisper')))
      step('tiny speech models', 'npx', ['--prefix', repo, 'tsx', resolve(repo, 'tools/tiny-models/cli.ts'), tiny]);
  }
}
