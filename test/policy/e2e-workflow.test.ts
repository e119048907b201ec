/** .github/workflows/e2e.yml runs both end-to-end checks of dist/dev on pull requests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const wf = parse(readFileSync(join(__dirname, '..', '..', '.github', 'workflows', 'e2e.yml'), 'utf8'));
const runs = (job: string): string => (wf.jobs[job].steps as Array<{ run?: string }>).map((s) => s.run ?? '').join('\n');

test('runs on pull requests that touch the manifests or the services', () => {
  expect(wf.on.pull_request.paths).toEqual(expect.arrayContaining(['infra/**', 'charts/**', 'dist/**', 'services/**', 'tools/pods/**']));
});

test('the pods job installs what the runner needs and runs e2e:pods as root with CI=true', () => {
  expect(runs('pods')).toMatch(/apt-get install .*iproute2 nftables redis-server prometheus/);
  expect(runs('pods')).toContain('sudo -E env "PATH=$PATH" CI=true npm run e2e:pods');
  expect(runs('pods')).toContain('npm run e2e:pods -- --variant fetch');
});

test('the kind job installs kind and runs e2e:kind', () => {
  expect(JSON.stringify(wf.jobs.kind.steps)).toContain('helm/kind-action');
  expect(runs('kind')).toContain('npm run e2e:kind');
});
