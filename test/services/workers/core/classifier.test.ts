/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * The five shipped core models: real ONNX files run by onnxruntime-node. They must be the
 * training script's output, disagree on some held-out utterances, and their CALI vote must be
 * at least as accurate as the median single core there.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, readTsv } from '../../../../scripts/train-core';
import { IntentClassifier } from '../../../../services/workers/core/classifier';
import { ordinalFromPodName } from '../../../../services/workers/core/role';
import { exited, REPO, spawnTs } from '../../acp/helpers';

const MODELS = join(REPO, 'models', 'core');

describe('Core 4 + 1 default models', () => {
  test('five cores disagree on some held-out utterances; the ensemble beats or ties the median core', async () => {
    const heldOut = readTsv(join(REPO, 'data', 'intents', 'heldout.tsv'));
    const train = readTsv(join(REPO, 'data', 'intents', 'train.tsv'));
    const trainTexts = new Set(train.map((e) => e.text));
    expect(heldOut.filter((e) => trainTexts.has(e.text))).toEqual([]); // held out for real
    const ev = await evaluate(MODELS, 5, heldOut);
    process.stdout.write(
      `held-out (${ev.heldOut}): cores ${ev.cores.map((c) => `${c.core}=${(c.accuracy * 100).toFixed(1)}%`).join(' ')}; ` +
        `median ${(ev.medianCore * 100).toFixed(1)}%, ensemble ${(ev.ensemble * 100).toFixed(1)}%, disagreements ${ev.disagreements}\n`,
    );
    expect(ev.disagreements).toBeGreaterThan(0);
    expect(ev.ensemble).toBeGreaterThanOrEqual(ev.medianCore);
    expect(ev.medianCore).toBeGreaterThan(0.6);
  });

  test('the committed models are exactly what scripts/train-core.ts outputs', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-core-'));
    try {
      const child = spawnTs(join(REPO, 'scripts', 'train-core.ts'), ['--out', out], {});
      expect(await exited(child)).toBe(0);
      for (let c = 0; c < 5; c++) {
        expect(readFileSync(join(out, `core-${c}`, 'model.onnx')).equals(readFileSync(join(MODELS, `core-${c}`, 'model.onnx')))).toBe(true);
        expect(readFileSync(join(out, `core-${c}`, 'config.json'), 'utf8')).toBe(
          readFileSync(join(MODELS, `core-${c}`, 'config.json'), 'utf8'),
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  test('classifies a micro-batch into verdicts {label, confidence, core}', async () => {
    const clf = await IntentClassifier.load({ dir: join(MODELS, 'core-2'), core: 2, maxBatch: 4 });
    try {
      const v = await clf.classify(['hello there', 'my name is Ana', 'turn off the lights', 'goodbye', 'what is the capital of italy']);
      expect(v.map((x) => x.label)).toEqual(['greeting', 'memory_request', 'command', 'farewell', 'question']);
      for (const x of v) {
        expect(x.core).toBe(2);
        expect(x.confidence).toBeGreaterThan(1 / 7);
        expect(x.confidence).toBeLessThanOrEqual(1);
      }
      // Concurrent callers share the one feature buffer safely.
      const [a, b] = await Promise.all([clf.classify(['hello']), clf.classify(['goodbye'])]);
      expect([a[0].label, b[0].label]).toEqual(['greeting', 'farewell']);
    } finally {
      await clf.dispose();
    }
  });

  test('a config naming an input the model lacks fails at load with both names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'core-bad-'));
    try {
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(MODELS, 'core-0', 'model.onnx'), join(dir, 'model.onnx'));
      const cfg = JSON.parse(readFileSync(join(MODELS, 'core-0', 'config.json'), 'utf8'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, input: 'input_ids' }));
      await expect(IntentClassifier.load({ dir, core: 0 })).rejects.toThrow(/inputs \[features\], config.json expects 'input_ids'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the ordinal comes from the StatefulSet pod name', () => {
    expect(ordinalFromPodName('core4-3')).toBe(3);
    expect(() => ordinalFromPodName('core4')).toThrow(/POD_NAME "core4" has no trailing -<n>/);
  });
});
