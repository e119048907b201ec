/**
 * Role `core` (StatefulSet core4): one of the five sovereign verdict cores. Ordinal n loads
 * `${CORE_MODELS_DIR}/core-n/`, consumes `acp:jobs:core:n` (every turn reaches every core) and
 * emits `verdict` {label, confidence, core} on the turn's event stream; micro-batches share one
 * ONNX run.
 */
import { coreQueue } from '../../contract';
import { join } from 'node:path';
import { JobRejectedError, partContent } from '../../acp';
import { loadEnv } from '../../config/env';
import { CORE_ENV } from '../../config/core';
import { Job, RoleFactory, WorkerRole } from '../runtime';
import { IntentClassifier } from './classifier';
import { TRACE_ENABLED, traceMark } from '../../acp/trace';

/** StatefulSet pods are `<name>-<ordinal>`; the trailing number is the ordinal. */
export function ordinalFromPodName(podName: string): number {
  const m = /-(\d+)$/.exec(podName);
  if (!m)
    throw new Error(`cannot derive the core ordinal: CORE_ORDINAL unset and POD_NAME ${JSON.stringify(podName)} has no trailing -<n>`);
  return Number(m[1]);
}

export const coreRole: RoleFactory = (ctx) => {
  const cfg = loadEnv(CORE_ENV, ctx.env);
  const ordinal = cfg.ordinal >= 0 ? cfg.ordinal : ordinalFromPodName(ctx.worker.podName);
  let clf: IntentClassifier | undefined;
  const role: WorkerRole = {
    name: 'core',
    queue: coreQueue(ordinal),
    batchSize: cfg.batchSize,
    // classify + emit: a rerun only repeats the verdict emit, which the job's dedupe drops.
    idempotent: true,
    async load() {
      clf = await IntentClassifier.load({
        dir: join(cfg.modelsDir, `core-${ordinal}`),
        core: ordinal,
        threads: cfg.threads,
        maxBatch: cfg.batchSize,
      });
      ctx.log.info({ core: ordinal, labels: clf.config.labels }, 'core model loaded');
    },
    ready: () => clf !== undefined,
    async handleBatch(jobs: Job[]) {
      const results: Array<unknown | undefined> = jobs.map(() => undefined);
      const texts: string[] = [];
      const idx: number[] = [];
      jobs.forEach((job, i) => {
        const text = partContent<unknown>(job.envelope, 'text/plain');
        if (job.envelope.kind !== 'core.classify') results[i] = new JobRejectedError(`core cannot handle kind '${job.envelope.kind}'`);
        else if (typeof text !== 'string') results[i] = new JobRejectedError('core.classify needs an inline text/plain part');
        else {
          texts.push(text);
          idx.push(i);
        }
      });
      if (!texts.length) return results;
      const verdicts = await clf!.classify(texts);
      if (TRACE_ENABLED) for (const i of idx) traceMark(jobs[i].envelope.turn, `core:${ordinal}.classified`);
      await Promise.all(
        idx.map(async (i, k) => {
          try {
            // The verdict and the job's commit in one round trip (the core emits nothing else).
            await jobs[i].emitFinal('verdict', verdicts[k]);
          } catch (err) {
            results[i] = err;
          }
        }),
      );
      return results;
    },
    async dispose() {
      await clf?.dispose();
      clf = undefined;
    },
  };
  return role;
};
