/** @jest-environment ./test/support/tiny-models/onnx-node-environment.js */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { OnnxModel, ort } from '../../../../services/workers/inference/model';
import { DT, GraphBuilder } from '../../../support/tiny-models/onnx-builder';

jest.setTimeout(120_000);

function doubler(path: string): string {
  const g = new GraphBuilder('doubler');
  const x = g.input('x', DT.FLOAT, ['n']);
  g.output('y', DT.FLOAT, ['n']);
  g.node('Add', [x, x], ['y']);
  writeFileSync(path, g.toBytes());
  return path;
}

describe('OnnxModel loader', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'onnx-model-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('falls back to CPU with a logged warning when CUDA is requested but absent', async () => {
    const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const m = await OnnxModel.load({
      path: doubler(join(dir, 'a.onnx')), executionProvider: 'cuda', intraOpThreads: 1,
      logger: { warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) },
    });
    try {
      // This machine's onnxruntime-node is the CPU build: on a CUDA node the provider would stay 'cuda'.
      expect(m.provider).toBe('cpu');
      expect(warnings).toHaveLength(1);
      expect(warnings[0].msg).toMatch(/CUDA.*falling back to CPU/);
      expect(warnings[0].obj).toMatchObject({ requested: 'cuda', using: 'cpu' });
      const out = await m.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
      expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4]);
    } finally {
      await m.dispose();
    }
  });

  it('shares one session per model and options, released with the last holder', async () => {
    const path = doubler(join(dir, 'b.onnx'));
    const a = await OnnxModel.load({ path });
    const b = await OnnxModel.load({ path });
    expect(b).toBe(a);
    await a.dispose();
    // Still usable by the second holder.
    await expect(b.run({ x: new ort.Tensor('float32', Float32Array.from([3]), [1]) })).resolves.toBeDefined();
    await b.dispose();
    const c = await OnnxModel.load({ path });
    expect(c).not.toBe(a);
    await c.dispose();
  });

  it('names the missing inputs and what was given instead of running', async () => {
    const m = await OnnxModel.load({ path: doubler(join(dir, 'c.onnx')) });
    try {
      await expect(m.run({ z: new ort.Tensor('float32', Float32Array.from([1]), [1]) })).rejects.toThrow(/missing inputs x \(given z:float32\[1\]\)/);
    } finally {
      await m.dispose();
    }
  });
});
