/**
 * The `orb` CLI: exit codes for usage, auth and reachability, WAV conversion, and the REST
 * commands against a real gateway process (services/orb/main.ts on the run's redis-server).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { DevStack, REPO_ROOT, startDevStack } from '../../../scripts/dev';
import { EXIT, main } from '../../../services/cli/orb';
import { seqProblems } from '../../../services/cli/smoke';
import { pcm16ToWav, wavToPcm16k } from '../../../services/cli/wav';
import { freePort } from '../../../tools/redis/redis-server';
import { deletePrefix, testRedis, testRedisUrl, uniquePrefix } from '../../support/vault';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('orb CLI without a gateway', () => {
  test('no command, unknown command and bad options are usage errors (2)', async () => {
    expect((await run([])).code).toBe(EXIT.usage);
    const unknown = await run(['fly'], { ORB_API_KEY: 'k' });
    expect(unknown.code).toBe(EXIT.usage);
    expect(unknown.err).toMatch(/unknown command 'fly'/);
    expect((await run(['replicas', '--timeout', 'soon'], { ORB_API_KEY: 'k' })).code).toBe(EXIT.usage);
    expect((await run(['replicas', '--url', 'not a url'], { ORB_API_KEY: 'k' })).code).toBe(EXIT.usage);
    expect((await run(['say'], { ORB_API_KEY: 'k' })).code).toBe(EXIT.usage);
    const noFile = await run(['ask', '/nonexistent/file.wav'], { ORB_API_KEY: 'k' });
    expect(noFile.code).toBe(EXIT.usage);
    expect(noFile.err).toMatch(/cannot read/);
  });

  test('--help prints usage and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toMatch(/orb <command>/);
  });

  test('a missing API key exits 4 before any request', async () => {
    const r = await run(['replicas', '--url', 'http://127.0.0.1:9']);
    expect(r.code).toBe(EXIT.unauthorized);
    expect(r.err).toMatch(/ORB_API_KEY/);
  });

  test('an unreachable gateway exits 3', async () => {
    const port = await freePort();
    const r = await run(['replicas', '--url', `http://127.0.0.1:${port}`, '--api-key', 'x'.repeat(32)]);
    expect(r.code).toBe(EXIT.unreachable);
    expect(r.err).toMatch(/cannot reach/);
  });

  test('a non-WAV file for ask is a usage error naming the file', async () => {
    const r = await run(['ask', join(REPO_ROOT, 'package.json')], { ORB_API_KEY: 'k' });
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toMatch(/package\.json: not a WAV file/);
  });
});

describe('WAV conversion', () => {
  test('any PCM WAV becomes 16 kHz mono PCM16 of the same duration', () => {
    const rate = 48_000;
    // Interleaved stereo, half a second, the same tone in both channels.
    const stereo = new Int16Array(rate).map((_, i) => Math.round(8000 * Math.sin(Math.floor(i / 2) / 10)));
    const wav = new WaveFile();
    wav.fromScratch(2, rate, '16', stereo);
    const pcm = wavToPcm16k(wav.toBuffer());
    expect(pcm.length / 2).toBeGreaterThan(16_000 / 2 - 50);
    expect(pcm.length / 2).toBeLessThan(16_000 / 2 + 50);
    // Same signal in both channels: the down-mix keeps its amplitude.
    const s = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    expect(Math.max(...s)).toBeGreaterThan(6000);
  });

  test('reply PCM round-trips through a WAV file', () => {
    const pcm = Buffer.from(new Int16Array([0, 1000, -1000, 32767, -32768]).buffer);
    const back = new WaveFile(pcm16ToWav(pcm, 22_050));
    expect((back.fmt as { sampleRate: number }).sampleRate).toBe(22_050);
    expect(Array.from(back.getSamples(false, Int16Array) as unknown as Int16Array)).toEqual([0, 1000, -1000, 32767, -32768]);
  });
});

describe('event stream continuity check', () => {
  test('reports gaps and duplicates, accepts a contiguous run', () => {
    const ev = (seq: number) => ({ seq, type: 'x' });
    expect(seqProblems([ev(3), ev(4), ev(5)])).toEqual([]);
    expect(seqProblems([ev(3), ev(5)])).toEqual(['gap 3 -> 5']);
    expect(seqProblems([ev(3), ev(3)])).toEqual(['duplicate seq 3']);
  });
});

const gatewayMissing = !existsSync(join(REPO_ROOT, 'services/orb/main.ts')) || !existsSync(join(REPO_ROOT, 'services/seed/main.ts'));
if (gatewayMissing) console.warn('SKIPPED orb CLI against a gateway: services/orb/main.ts or services/seed/main.ts not landed');
(gatewayMissing ? describe.skip : describe)('orb CLI against a real gateway', () => {
  let stack: DevStack;
  const prefix = uniquePrefix('cli');
  const redis = testRedis();

  beforeAll(async () => {
    stack = await startDevStack({
      redisUrl: testRedisUrl(),
      orbPorts: [0],
      cores: 0,
      speech: false,
      web: false,
      keyPrefix: prefix,
      env: { LOG_LEVEL: 'warn' },
      log: () => undefined,
      readyTimeoutMs: 180_000,
    });
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  }, 60_000);

  const opts = () => ['--url', stack.orbUrls[0], '--api-key', stack.apiKey];

  test('replicas lists the live gateway from its heartbeat', async () => {
    const r = await run(['replicas', ...opts()]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toMatch(/pod=orb-core-0/);
  });

  test('a wrong API key exits 4', async () => {
    const r = await run(['replicas', '--url', stack.orbUrls[0], '--api-key', 'w'.repeat(32)]);
    expect(r.code).toBe(EXIT.unauthorized);
    expect(r.err).toMatch(/401 ORB_ERR_UNAUTHORIZED/);
  });

  test('sessions shows a session the key owns; an unknown one exits 5 with the 404 code', async () => {
    const created = await fetch(`${stack.orbUrls[0]}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const { id } = (await created.json()) as { id: string };
    const ok = await run(['sessions', id, ...opts()]);
    expect(ok.code).toBe(EXIT.ok);
    expect(ok.out).toContain(`session ${id}`);
    const missing = await run(['sessions', '00000000-0000-4000-8000-000000000000', ...opts()]);
    expect(missing.code).toBe(EXIT.http);
    expect(missing.err).toMatch(/404 ORB_ERR_UNKNOWN_SESSION/);
  });

  test('say on an unknown session exits 1 naming the 404 instead of retrying forever', async () => {
    // The gateway refuses the upgrade (404) before opening the socket; the client must not retry forever.
    const r = await run(['say', 'hello', ...opts(), '--session', '00000000-0000-4000-8000-000000000000', '--timeout', '30000']);
    expect(r.code).toBe(EXIT.failed);
    expect(r.err).toMatch(/4404|404/);
  });
});
