/** @jest-environment ./test/support/onnx-node-environment.js */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ExecutionProviderError, OnnxModel, ort } from '../../../services/inference/model';
import { DT, GraphBuilder } from '../../../tools/tiny-models/onnx-builder';

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

  // onnxruntime-node here is the CPU build (.npmrc skips the CUDA binaries): asking for 'cuda' fails for real.
  it('a CUDA request whose provider cannot load fails naming the model and the fix, with no CPU fallback', async () => {
    const path = doubler(join(dir, 'a.onnx'));
    const err = await OnnxModel.load({ path, executionProvider: 'cuda', intraOpThreads: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect((err as Error).message).toContain(`CUDA execution provider could not be loaded for ${path}: `);
    // onnxruntime's own reason, not ours: the shared provider library is missing.
    expect((err as ExecutionProviderError).cause).toMatch(/Cuda|CUDA|shared library/);
    expect((err as Error).message).toContain('no CPU fallback: set EXECUTION_PROVIDER=cpu where CPU is meant');
    expect(OnnxModel.providersInUse()).toEqual([]);
    // The failed load is not cached: a CPU load of the same file works and reports cpu.
    const m = await OnnxModel.load({ path, executionProvider: 'cpu' });
    try {
      expect(m.provider).toBe('cpu');
      expect(OnnxModel.providersInUse()).toEqual(['cpu']);
      const out = await m.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
      expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4]);
    } finally {
      await m.dispose();
    }
    expect(OnnxModel.providersInUse()).toEqual([]);
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
      await expect(m.run({ z: new ort.Tensor('float32', Float32Array.from([1]), [1]) })).rejects.toThrow(
        /missing inputs x \(given z:float32\[1\]\)/,
      );
    } finally {
      await m.dispose();
    }
  });
});
