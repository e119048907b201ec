/**
 * The stand-in model hub's process (model-hub.ts), run by the pod runner in the hub's pod:
 *   node --import tsx tools/pods/hub-server.ts serve <repos.json> <listen address> <port>
 *     repos.json: [{ "repo": "owner/name", "files": [{ "path", "source" }] }]; one access-log JSON line per request on stdout
 *   npx tsx tools/pods/hub-server.ts lock <tiny-models dir>
 *     prints what charts/models.tiny.lock.json must hold for those tiny models (revisions and sha256)
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { loadHubRepos, startHubServer, tinyHubLock, type HubRepoSpec } from './model-hub';

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'lock') {
    const lock = tinyHubLock(rest[0] ?? 'tiny-models');
    const comment =
      "The tiny test models (tools/tiny-models/cli.ts) as the pod runner's stand-in hub serves them (tools/pods/model-hub.ts): the dev-fetch variant fetches these and verifies each sha256. Each revision hashes its repository's tree. Regenerate: npx tsx tools/tiny-models/cli.ts /tmp/tiny && npx tsx tools/pods/hub-server.ts lock /tmp/tiny";
    process.stdout.write(`${JSON.stringify({ $comment: comment, ...lock }, null, 2)}\n`);
    return 0;
  }
  if (cmd === 'serve') {
    const [file, host, port] = rest;
    const repos = loadHubRepos(JSON.parse(readFileSync(file, 'utf8')) as HubRepoSpec[]);
    const server = await startHubServer(repos, host, Number(port), (a) => process.stdout.write(`${JSON.stringify(a)}\n`));
    const bound = (server.address() as AddressInfo).port;
    process.stdout.write(
      `hub: serving ${repos.map((r) => `${r.repo}@${r.revision} (${r.files.size} files)`).join(', ')} on ${host}:${bound}\n`,
    );
    return new Promise(() => undefined); // serves until killed
  }
  process.stderr.write('usage: hub-server.ts serve <repos.json> <address> <port> | lock <tiny-models dir>\n');
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`hub: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
