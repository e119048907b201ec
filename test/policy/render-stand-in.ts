/**
 * A stand-in for charts/main.ts in the scratch git repos of the diff and review tests: renders
 * SYNTH_OUT/<env>/app.k8s.yaml from replicas.json, so a commit that changes replicas.json changes the render.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** Runs git in `repo` with a throwaway identity; returns its output without the trailing newline. */
export function gitIn(repo: string): (...args: string[]) => string {
  return (...args) =>
    execFileSync('git', ['-c', 'user.email=policy@test', '-c', 'user.name=policy', '-c', 'commit.gpgsign=false', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
}

/**
 * A scratch repository with RENDER and three states of replicas.json: commit 'first' (2 replicas,
 * orb:1.0.0), commit 'scale' (3 replicas), and an uncommitted image bump to orb:1.1.0.
 */
export function scratchRenderRepo(prefix: string, extraFiles: Record<string, string> = {}): string {
  const repo = mkdtempSync(join(tmpdir(), prefix));
  const git = gitIn(repo);
  const replicas = (n: number, image: string) => writeFileSync(join(repo, 'replicas.json'), JSON.stringify({ replicas: n, image }));
  git('init', '-q');
  writeFileSync(join(repo, 'render.js'), RENDER);
  for (const [name, text] of Object.entries(extraFiles)) writeFileSync(join(repo, name), text);
  replicas(2, 'orb:1.0.0');
  git('add', '.');
  git('commit', '-q', '-m', 'first');
  replicas(3, 'orb:1.0.0');
  git('commit', '-q', '-am', 'scale');
  replicas(3, 'orb:1.1.0');
  return repo;
}
