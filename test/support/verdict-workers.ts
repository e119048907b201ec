/**
 * The shipped identity and the verdict path in-process: five cores (the committed models) and
 * CALI on the vault under `prefix`, for tests that run real turns through a gateway. The workers
 * are returned unstarted, so a test can add speech workers and start them all together.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { createAcp } from '../../services/acp';
import { loadEnv } from '../../services/config/env';
import { WORKER_ENV } from '../../services/config/worker';
import { parseIdentity, writeIdentity } from '../../services/seed/identity';
import { caliRole } from '../../services/workers/cali/role';
import { coreRole } from '../../services/workers/core/role';
import { WorkerRuntime } from '../../services/workers/runtime';

const REPO = join(__dirname, '..', '..');

/** A worker pod's config for tests: short blocking reads, no logs, no trimming. */
export function testWorkerConfig(podName: string, blockMs: number) {
  return { ...loadEnv(WORKER_ENV, { ACP_BLOCK_MS: String(blockMs), LOG_LEVEL: 'silent', ACP_TRIM_INTERVAL_MS: '0' }), podName };
}

/** Writes services/seed/identity.json into the vault, as the seed Job does. */
export async function writeShippedIdentity(redis: Redis, prefix: string): Promise<void> {
  await writeIdentity(
    redis,
    createAcp(redis, { prefix }).keys,
    parseIdentity(readFileSync(join(REPO, 'services', 'seed', 'identity.json'), 'utf8')),
  );
}

/**
 * Five cores and CALI, each on its own connection from `client`. CALI's quorum grace is long (3 s)
 * so a slow fifth core on a loaded CI machine still makes it into the vote.
 */
export function verdictWorkers(client: () => Redis, prefix: string, blockMs: number): WorkerRuntime[] {
  const workers: WorkerRuntime[] = [];
  for (let n = 0; n < 5; n++) {
    workers.push(
      new WorkerRuntime(coreRole, {
        redis: client(),
        keyPrefix: prefix,
        http: false,
        worker: testWorkerConfig(`core4-${n}`, blockMs),
        env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
      }),
    );
  }
  workers.push(
    new WorkerRuntime(caliRole, {
      redis: client(),
      keyPrefix: prefix,
      http: false,
      worker: testWorkerConfig('cali-0', blockMs),
      env: { CALI_QUORUM_GRACE_MS: '3000' },
    }),
  );
  return workers;
}
