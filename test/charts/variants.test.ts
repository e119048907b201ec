/**
 * Variants (charts/environments.ts VARIANTS) are rendered on request for the pod runner, never into
 * dist/: each must still be a valid environment that meets dev's bar of POLICY.md.
 */
import { validateEnvironment } from '../../charts/config';
import { VARIANTS } from '../../charts/environments';
import { runPolicy } from '../../policy/engine';
import { synthEnvironment, validateObject } from '../infra/manifests';

describe.each(Object.entries(VARIANTS))('variant %s', (_name, cfg) => {
  const { objects, testPods } = synthEnvironment(cfg);

  test('validates', () => {
    expect(validateEnvironment(cfg)).toBe(cfg);
  });

  test('every object is valid against the Kubernetes schemas', () => {
    for (const obj of [...objects, ...testPods]) expect(() => validateObject(obj)).not.toThrow();
  });

  test("passes every POLICY.md rule with dev's exemptions only, the model-fetch init containers included", () => {
    expect(runPolicy([...objects, ...testPods], { env: 'dev' }).findings).toEqual([]);
  });
});
