/**
 * A stand-in for charts/main.ts in the scratch git repos of the diff and review tests: renders
 * SYNTH_OUT/<env>/app.k8s.yaml from replicas.json, so a commit that changes replicas.json changes the render.
 */
export const RENDER = `
const fs = require('fs'), path = require('path');
const out = process.env.SYNTH_OUT || 'dist';
const { replicas, image } = JSON.parse(fs.readFileSync('replicas.json', 'utf8'));
for (const env of ['dev', 'prod']) {
  fs.mkdirSync(path.join(out, env), { recursive: true });
  fs.writeFileSync(path.join(out, env, 'app.k8s.yaml'), [
    'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: orb-core', '  namespace: ucm4-' + env, 'spec:',
    '  replicas: ' + replicas, '  template:', '    spec:', '      containers:', '        - name: orb-field', '          image: ' + image, '',
  ].join('\\n'));
}
`;
