/**
 * Model delivery for the speech workers: where the model files come from (a Hugging Face–compatible
 * hub, an S3-compatible bucket, or a pre-filled volume) and the `model-fetch` init container that
 * puts them, verified, into the model volume before the worker starts.
 */
import { MODEL_FETCH_ENV, checkModelPath, type ModelFileSpec } from '../services/config/model-fetch';
import { hardenedContainer, type ResourceSpec } from './hardened-pod';
import { k8s } from './k8s';
import { renderEnv, type SecretKeyRef } from './service-env';

/** One model file: its path in the source, where it lands, and its sha256 from the lock file. */
export type ModelFile = ModelFileSpec;

/** Where a speech role's model files come from. */
export type ModelSource =
  | {
      readonly kind: 'hub';
      /** @default 'https://huggingface.co' */
      readonly endpoint?: string;
      /** e.g. `onnx-community/whisper-base`. */
      readonly repo: string;
      /** A commit hash (40 hex): a branch name could change under a running deployment. */
      readonly revision: string;
      readonly files: readonly ModelFile[];
      /** Access token for gated or private repositories. @default - anonymous */
      readonly tokenSecret?: SecretKeyRef;
    }
  | {
      readonly kind: 's3';
      /** S3-compatible endpoint, path-style (`https://s3.eu-west-1.amazonaws.com`, a MinIO Service). */
      readonly endpoint: string;
      readonly bucket: string;
      /** @default '' */
      readonly prefix?: string;
      /** @default 'us-east-1' */
      readonly region?: string;
      readonly files: readonly ModelFile[];
      /** Secret keys of the access key pair. @default - anonymous */
      readonly credentialsSecret?: { readonly secret: string; readonly accessKeyIdKey: string; readonly secretAccessKeyKey: string };
    }
  /** The volume is filled by the operator: the files are only verified against the lock (sha256 required). */
  | { readonly kind: 'volume'; readonly files: readonly ModelFile[] };

/** Resources of the model-fetch init container (it streams to the volume: little memory, no local disk). */
export const MODEL_FETCH_RESOURCES: ResourceSpec = {
  cpu: { request: '100m', limit: '1' },
  memory: { request: '128Mi', limit: '256Mi' },
  ephemeralStorage: { request: '32Mi', limit: '128Mi' },
};

/** Mount path of the model volume in both containers. */
export const MODEL_MOUNT = '/models';

/** Problems of a source, each naming `field` (the prop path). */
export function modelSourceProblems(field: string, s: ModelSource): string[] {
  const p: string[] = [];
  const at = (f: string, v: unknown, msg: string) => p.push(`'${field}.${f}' (${JSON.stringify(v)}) ${msg}`);
  if (!s.files.length) at('files', [], 'must list at least one file');
  s.files.forEach((f, i) => {
    const bad = checkModelPath(f.path);
    if (bad) at(`files[${i}].path`, f.path, bad);
    if (f.as !== undefined && checkModelPath(f.as)) at(`files[${i}].as`, f.as, checkModelPath(f.as) as string);
    if (f.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(f.sha256)) at(`files[${i}].sha256`, f.sha256, 'must be 64 lower-case hex digits');
    if (s.kind === 'volume' && !f.sha256)
      at(`files[${i}].sha256`, f.sha256, 'is required for a pre-filled volume (nothing else vouches for the bytes)');
  });
  if (s.kind === 'hub') {
    if (!/^[^/\s]+\/[^/\s]+$/.test(s.repo)) at('repo', s.repo, "must be 'owner/name'");
    if (!/^[0-9a-f]{40}$/.test(s.revision)) at('revision', s.revision, 'must be a pinned 40-hex commit hash');
    if (s.endpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(s.endpoint)) at('endpoint', s.endpoint, 'must be an http(s) URL');
  }
  if (s.kind === 's3') {
    if (!/^https?:\/\/[^\s]+$/.test(s.endpoint)) at('endpoint', s.endpoint, 'must be an http(s) URL');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s.bucket)) at('bucket', s.bucket, 'must be an S3 bucket name');
  }
  return p;
}

/** The `model-fetch` init container of a speech worker pod. */
export function modelFetchContainer(o: {
  readonly image: string;
  readonly imagePullPolicy: string;
  readonly source: ModelSource;
  readonly volumeName: string;
  readonly resources?: ResourceSpec;
  /** Egress proxy URL (`http://host:port`). @default - direct */
  readonly proxy?: string;
}): k8s.Container {
  const s = o.source;
  const files = JSON.stringify(
    s.files.map((f) => ({ path: f.path, ...(f.as ? { as: f.as } : {}), ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  );
  const env = renderEnv(MODEL_FETCH_ENV, {
    values: {
      source: s.kind,
      modelDir: MODEL_MOUNT,
      files,
      ...(s.kind === 'hub' ? { hubEndpoint: s.endpoint ?? 'https://huggingface.co', repo: s.repo, revision: s.revision } : {}),
      ...(s.kind === 's3'
        ? { s3Endpoint: s.endpoint, s3Bucket: s.bucket, s3Prefix: s.prefix ?? '', s3Region: s.region ?? 'us-east-1' }
        : {}),
      ...(o.proxy && s.kind !== 'volume' ? { proxy: o.proxy } : {}),
    },
    secrets: {
      ...(s.kind === 'hub' && s.tokenSecret ? { hubToken: s.tokenSecret } : {}),
      ...(s.kind === 's3' && s.credentialsSecret
        ? {
            s3AccessKeyId: { secret: s.credentialsSecret.secret, key: s.credentialsSecret.accessKeyIdKey },
            s3SecretAccessKey: { secret: s.credentialsSecret.secret, key: s.credentialsSecret.secretAccessKeyKey },
          }
        : {}),
    },
    fieldRefs: { podName: 'metadata.name' },
  });
  return {
    ...hardenedContainer({
      name: 'model-fetch',
      image: o.image,
      imagePullPolicy: o.imagePullPolicy,
      command: ['node', 'build/services/model-fetch/main.js'],
      env,
      resources: o.resources ?? MODEL_FETCH_RESOURCES,
      // A pre-filled volume is only read; anything else is written here and read-only in the worker.
      volumeMounts: [{ name: o.volumeName, mountPath: MODEL_MOUNT, readOnly: s.kind === 'volume' }],
    }),
    // `kubectl describe pod` then shows the FAILED line naming the file and the reason.
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** Bytes of a storage quantity (`20Gi`, `500M`), NaN when it is not one. */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  return m ? Number(m[1]) * UNITS[m[2] ?? ''] : NaN;
}
