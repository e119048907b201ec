/**
 * charts/main.ts' `synthEnvironments`: what `npm run review` hands to the policy and the diff in
 * memory must be exactly what `npm run policy` and `npm run diff` read back from the YAML it writes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { synthEnvironments } from '../../charts/main';
import { ENVIRONMENTS } from '../../charts/environments';
import { loadEnvironment } from '../../policy/load';

jest.setTimeout(120_000);

test('the in-process objects equal the rendered YAML, object for object and in file order', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-objects-'));
  try {
    const envs = synthEnvironments(Object.keys(ENVIRONMENTS), out, () => undefined);
    expect(envs.map((e) => e.name)).toEqual(Object.keys(ENVIRONMENTS));
    for (const e of envs) {
      expect(e.objects.length).toBeGreaterThan(10);
      expect(e.objects).toEqual(loadEnvironment(path.join(out, e.name)).objects);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
