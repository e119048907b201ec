/**
 * Trains the five default verdict cores (Core 4 + 1) and exports each as ONNX:
 * multinomial logistic regression on hashed n-gram features (services/workers/core/features.ts),
 * each core on its own bootstrap sample of data/intents/train.tsv with its own seed, so the five
 * are genuinely independent. Graph: MatMul(features, W) + B → Softmax = probabilities.
 *
 *   npm run train:core [-- --out models/core --cores 5]
 *
 * Then scores every core and the CALI ensemble (services/workers/cali/quorum.ts) on the held-out
 * split by running the exported ONNX files through onnxruntime-node, and writes eval.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { aggregateVerdicts } from '../services/workers/cali/quorum';
import { IntentClassifier, Verdict } from '../services/workers/core/classifier';
import { DEFAULT_FEATURES, HashedNgramSpec, sparseFeatures } from '../services/workers/core/features';

export const LABELS = ['greeting', 'question', 'command', 'memory_request', 'smalltalk', 'farewell', 'unknown'] as const;

export interface Example {
  readonly label: string;
  readonly text: string;
}

export function readTsv(path: string): Example[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [label, text] = l.split('\t');
      if (!(LABELS as readonly string[]).includes(label) || !text) throw new Error(`${path}: bad line ${JSON.stringify(l)}`);
      return { label, text };
    });
}

/** mulberry32: small seeded PRNG so every core's bootstrap sample is reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Trained {
  W: Float32Array;
  B: Float32Array;
  trainAcc: number;
}

export function trainSoftmax(data: Example[], spec: HashedNgramSpec, opts: { epochs: number; lr: number; l2: number }): Trained {
  const K = LABELS.length;
  const D = spec.dim;
  const X = data.map((e) => [...sparseFeatures(e.text, spec)]);
  const Y = data.map((e) => (LABELS as readonly string[]).indexOf(e.label));
  const W = new Float64Array(D * K);
  const B = new Float64Array(K);
  const gW = new Float64Array(D * K);
  const gB = new Float64Array(K);
  const p = new Float64Array(K);
  const forward = (x: [number, number][]) => {
    for (let k = 0; k < K; k++) p[k] = B[k];
    for (const [i, v] of x) for (let k = 0; k < K; k++) p[k] += W[i * K + k] * v;
    const m = Math.max(...p);
    let s = 0;
    for (let k = 0; k < K; k++) {
      p[k] = Math.exp(p[k] - m);
      s += p[k];
    }
    for (let k = 0; k < K; k++) p[k] /= s;
  };
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    gW.fill(0);
    gB.fill(0);
    X.forEach((x, n) => {
      forward(x);
      for (let k = 0; k < K; k++) {
        const d = p[k] - (k === Y[n] ? 1 : 0);
        gB[k] += d;
        for (const [i, v] of x) gW[i * K + k] += d * v;
      }
    });
    const scale = opts.lr / X.length;
    for (let j = 0; j < W.length; j++) W[j] -= scale * gW[j] + opts.lr * opts.l2 * W[j];
    for (let k = 0; k < K; k++) B[k] -= scale * gB[k];
  }
  let correct = 0;
  X.forEach((x, n) => {
    forward(x);
    if (p.indexOf(Math.max(...p)) === Y[n]) correct++;
  });
  return { W: Float32Array.from(W), B: Float32Array.from(B), trainAcc: correct / X.length };
}

function tensor(name: string, dims: number[], data: Float32Array): onnx.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** The classifier graph: probabilities = Softmax(features · W + B). */
export function exportOnnx(W: Float32Array, B: Float32Array, dim: number, classes: number, docString: string): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'ucm4-core/train-core',
    producerVersion: '1',
    docString,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'intent_logreg',
      input: [valueInfo('features', ['N', dim])],
      output: [valueInfo('probabilities', ['N', classes])],
      initializer: [tensor('W', [dim, classes], W), tensor('B', [classes], B)],
      node: [
        { opType: 'MatMul', input: ['features', 'W'], output: ['logits_raw'], name: 'matmul' },
        { opType: 'Add', input: ['logits_raw', 'B'], output: ['logits'], name: 'bias' },
        {
          opType: 'Softmax',
          input: ['logits'],
          output: ['probabilities'],
          name: 'softmax',
          attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
        },
      ],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

export interface Evaluation {
  readonly heldOut: number;
  readonly cores: { core: number; accuracy: number }[];
  readonly medianCore: number;
  readonly ensemble: number;
  /** Held-out utterances on which not all cores agree. */
  readonly disagreements: number;
}

/** Scores each core's exported model and the CALI vote on the held-out split. */
export async function evaluate(modelsDir: string, cores: number, heldOut: Example[]): Promise<Evaluation> {
  const texts = heldOut.map((e) => e.text);
  const perCore: Verdict[][] = [];
  for (let c = 0; c < cores; c++) {
    const clf = await IntentClassifier.load({ dir: join(modelsDir, `core-${c}`), core: c, maxBatch: 64 });
    perCore.push(await clf.classify(texts));
    await clf.dispose();
  }
  const acc = (pred: string[]) => pred.filter((l, i) => l === heldOut[i].label).length / heldOut.length;
  const coreAcc = perCore.map((v, c) => ({ core: c, accuracy: acc(v.map((x) => x.label)) }));
  const sorted = coreAcc.map((c) => c.accuracy).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const ensemble = acc(texts.map((_, i) => aggregateVerdicts(perCore.map((v) => v[i])).label));
  const disagreements = texts.filter((_, i) => new Set(perCore.map((v) => v[i].label)).size > 1).length;
  return { heldOut: heldOut.length, cores: coreAcc, medianCore: median, ensemble, disagreements };
}

async function main(): Promise<void> {
  const out = arg('out', 'models/core');
  const cores = Number(arg('cores', '5'));
  const train = readTsv(arg('train', 'data/intents/train.tsv'));
  const heldOut = readTsv(arg('heldout', 'data/intents/heldout.tsv'));
  const spec = DEFAULT_FEATURES;
  const hyper = { epochs: 300, lr: 2.0, l2: 1e-4 };
  for (let c = 0; c < cores; c++) {
    const seed = 20261126 + 7919 * c;
    const rnd = prng(seed);
    const sample = Array.from({ length: train.length }, () => train[Math.floor(rnd() * train.length)]);
    const t = trainSoftmax(sample, spec, hyper);
    const dir = join(out, `core-${c}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.onnx'), exportOnnx(t.W, t.B, spec.dim, LABELS.length, `UCM 4 Core intent classifier, core ${c}`));
    const unique = new Set(sample.map((e) => e.text)).size;
    writeFileSync(
      join(dir, 'config.json'),
      `${JSON.stringify(
        {
          labels: LABELS,
          features: spec,
          input: 'features',
          output: 'probabilities',
          training: {
            core: c,
            seed,
            bootstrap_size: sample.length,
            unique_examples: unique,
            ...hyper,
            train_accuracy: Number(t.trainAcc.toFixed(4)),
          },
        },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(
      `core-${c}: seed ${seed}, ${unique}/${train.length} unique examples, train accuracy ${(t.trainAcc * 100).toFixed(1)}%\n`,
    );
  }
  const ev = await evaluate(out, cores, heldOut);
  for (const c of ev.cores) process.stdout.write(`held-out core-${c.core}: ${(c.accuracy * 100).toFixed(1)}%\n`);
  process.stdout.write(
    `held-out median core: ${(ev.medianCore * 100).toFixed(1)}%  ensemble (CALI vote): ${(ev.ensemble * 100).toFixed(1)}%  ` +
      `cores disagree on ${ev.disagreements}/${ev.heldOut}\n`,
  );
  writeFileSync(join(out, 'eval.json'), `${JSON.stringify(ev, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
