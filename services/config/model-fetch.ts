/**
 * Env of the `model-fetch` init container (services/model-fetch): where a speech role's model
 * files come from, which files, and the hashes they must have. The speech worker construct renders
 * it from the environment config; tokens and keys only as secretKeyRef.
 */
import { int, oneOf, str, type EnvVar } from './env';

export const MODEL_SOURCE_KINDS = ['hub', 's3', 'volume'] as const;
export type ModelSourceKind = (typeof MODEL_SOURCE_KINDS)[number];

/** One file to deliver: its path in the source (and under MODEL_DIR) and, from a lock file, its sha256. */
export interface ModelFileSpec {
  readonly path: string;
  /** Where it lands under MODEL_DIR. @default - `path` */
  readonly as?: string;
  /** Lower-case hex sha256; absent means the hub's own content hash is used. */
  readonly sha256?: string;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A file path that stays inside the model directory once joined to it. */
export function checkModelPath(p: string): string | undefined {
  if (!p || p.startsWith('/') || p.split('/').some((s) => s === '..' || s === '.' || s === ''))
    return 'must be a relative path without . or .. segments';
  if (p.startsWith('.partial') || p === '.verified.json') return 'is a name model-fetch reserves';
  return undefined;
}

function modelFiles(name: string, doc: string): EnvVar<ModelFileSpec[]> {
  return {
    name,
    doc,
    default: [],
    parse: (raw) => {
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        throw new Error('must be a JSON array of {"path","as"?,"sha256"?}');
      }
      if (!Array.isArray(v)) throw new Error('must be a JSON array of {"path","as"?,"sha256"?}');
      const seen = new Set<string>();
      return v.map((f, i) => {
        const path = (f as { path?: unknown })?.path;
        const sha256 = (f as { sha256?: unknown })?.sha256;
        const as = (f as { as?: unknown })?.as;
        if (typeof path !== 'string') throw new Error(`entry ${i} has no string "path"`);
        const bad = checkModelPath(path);
        if (bad) throw new Error(`entry ${i} path ${JSON.stringify(path)} ${bad}`);
        if (as !== undefined && (typeof as !== 'string' || checkModelPath(as)))
          throw new Error(`entry ${i} "as" ${JSON.stringify(as)} ${checkModelPath(String(as)) ?? 'must be a string'}`);
        const dest = (as as string | undefined) ?? path;
        if (seen.has(dest)) throw new Error(`entry ${i} repeats destination ${JSON.stringify(dest)}`);
        seen.add(dest);
        if (sha256 !== undefined && (typeof sha256 !== 'string' || !SHA256.test(sha256)))
          throw new Error(`entry ${i} (${path}) sha256 must be 64 lower-case hex digits`);
        return { path, ...(as !== undefined ? { as: as as string } : {}), ...(sha256 !== undefined ? { sha256: sha256 as string } : {}) };
      });
    },
  };
}

export const MODEL_FETCH_ENV = {
  source: oneOf('MODEL_SOURCE', MODEL_SOURCE_KINDS, {
    doc: 'hub (Hugging Face-compatible), s3 (S3-compatible bucket) or volume (pre-filled: verify only)',
  }),
  modelDir: str('MODEL_DIR', { doc: 'Directory the files are delivered to (the model volume)', default: '/models' }),
  files: modelFiles(
    'MODEL_FILES',
    'JSON array of the files to deliver: {"path", "sha256"?}; sha256 from the committed lock, else the hub hash',
  ),
  hubEndpoint: str('MODEL_HUB_ENDPOINT', {
    doc: 'Base URL of the hub (https://huggingface.co or a mirror)',
    default: 'https://huggingface.co',
  }),
  repo: str('MODEL_REPO', { doc: 'Hub repository, e.g. onnx-community/whisper-base', default: '' }),
  revision: str('MODEL_REVISION', { doc: 'Pinned revision (a commit hash) of the hub repository', default: '' }),
  hubToken: str('MODEL_HUB_TOKEN', { doc: 'Hub access token (from a Secret); empty for public repositories', default: '', secret: true }),
  s3Endpoint: str('MODEL_S3_ENDPOINT', { doc: 'S3-compatible endpoint URL (path-style requests)', default: '' }),
  s3Bucket: str('MODEL_S3_BUCKET', { doc: 'Bucket holding the model files', default: '' }),
  s3Prefix: str('MODEL_S3_PREFIX', { doc: 'Key prefix of the files in the bucket (no leading slash)', default: '' }),
  s3Region: str('MODEL_S3_REGION', { doc: 'Region used in the SigV4 signature', default: 'us-east-1' }),
  s3AccessKeyId: str('AWS_ACCESS_KEY_ID', { doc: 'S3 access key id (from a Secret)', default: '', secret: true }),
  s3SecretAccessKey: str('AWS_SECRET_ACCESS_KEY', { doc: 'S3 secret access key (from a Secret)', default: '', secret: true }),
  proxy: str('HTTPS_PROXY', {
    doc: 'Egress proxy URL (http://host:port) every request tunnels through (CONNECT); empty for direct',
    default: '',
  }),
  retries: int('MODEL_FETCH_RETRIES', {
    doc: 'Attempts per file after an interrupted transfer (each resumes with Range)',
    default: 4,
    min: 1,
    max: 100,
  }),
  timeoutMs: int('MODEL_FETCH_TIMEOUT_MS', {
    doc: 'A transfer with no bytes for this long is cut and resumed, ms',
    default: 30000,
    min: 100,
  }),
  podName: str('POD_NAME', {
    doc: 'Pod name: partial downloads are per pod, so replicas sharing a volume never write one file',
    default: 'local',
  }),
} as const;

/** Written last into MODEL_DIR by model-fetch; the worker refuses to load without it. */
/** Where a file lands under MODEL_DIR. */
export function destinationOf(f: ModelFileSpec): string {
  return f.as ?? f.path;
}

export const VERIFIED_MARKER = '.verified.json';
