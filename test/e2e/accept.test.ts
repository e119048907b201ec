/**
 * `orb smoke --accept` against the dev stack (local processes, tiny models): in test mode it checks
 * the plumbing of every stage and says so; without test mode the same stack must fail the check,
 * because the tiny whisper says one sentence whatever it hears.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { dev } from '../../charts/environments';
import { DevStack, startDevStack } from '../../scripts/dev';
import { synthEnvironment } from '../infra/manifests';
import { main as orbCli } from '../../services/cli/orb';
import { TINY_WHISPER_TRANSCRIPT } from '../../tools/tiny-models/whisper';
import { uniquePrefix } from '../support/vault';
import { missingEntries, speechUnavailable } from './support';

jest.setTimeout(600_000);
const GOLDEN = join(__dirname, '..', 'fixtures', 'golden');
const missing = [...missingEntries(), ...(speechUnavailable() ? [speechUnavailable()!] : [])];
if (missing.length) console.warn(`SKIPPED orb smoke --accept e2e: ${missing.join(', ')}`);
const suite = missing.length ? describe.skip : describe;

suite('orb smoke --accept on the dev stack', () => {
  let stack: DevStack;
  const lines: string[] = [];

  beforeAll(async () => {
    stack = await startDevStack({
      redisUrl: '',
      orbPorts: [0],
      speech: true,
      web: false,
      keyPrefix: uniquePrefix('accept'),
      env: { LOG_LEVEL: 'warn' },
      log: (name, line) => {
        lines.push(`${name} | ${line}`);
        if (lines.length > 2000) lines.splice(0, 1000);
      },
      readyTimeoutMs: 240_000,
    });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    if (stack?.vault) rmSync(stack.vault.dir, { recursive: true, force: true });
  }, 120_000);

  async function accept(extra: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
    const out: string[] = [];
    // --speak as in system.test.ts: the resume step then drops a turn that is still streaming audio.
    // Without it a text turn can arrive in one TCP read, and the session client processes the
    // buffered turn.end after drop(), so it never reconnects (a race in the shared session client).
    const code = await orbCli(
      [
        'smoke',
        '--accept',
        '--speak',
        '--url',
        stack.orbUrls[0],
        '--api-key',
        stack.apiKey,
        '--timeout',
        '120000',
        '--golden',
        GOLDEN,
        ...extra,
      ],
      { out: (s) => out.push(s), err: (s) => out.push(s), env },
    );
    return { code, out: out.join('\n') };
  }

  test('in test mode every stage answers, the table is printed, the output says test mode', async () => {
    const { code, out } = await accept(['--test-mode']);
    console.log(`orb smoke --accept --test-mode:\n${out}`);
    if (code !== 0) throw new Error(`exit ${code}:\n${out}\n--- stack ---\n${lines.slice(-60).join('\n')}`);
    expect(out).toContain('smoke: all steps passed');
    expect(out).toContain('accept: TEST MODE: tiny models');
    expect(out).toMatch(/^utterance +asr ms +wer +tts ms +audio s +rt-asr ms +rt wer +asr transcript \/ round-trip transcript$/m);
    // Every stage answered: the tiny whisper's one sentence, a second or so of tiny-voice audio, and
    // a round-trip transcription (empty: the tiny voice's buzz holds no speech for the VAD).
    for (const id of ['golden-1', 'golden-2', 'golden-3']) {
      expect(out).toMatch(
        new RegExp(`^${id} +\\d+ +\\d+\\.\\d\\d +\\d+ +[1-9]\\.\\d\\d +\\d+ +\\d+\\.\\d\\d +"${TINY_WHISPER_TRANSCRIPT}" / ""$`, 'm'),
      );
    }
    expect(out).toMatch(/spoken turn \(ms from the end of speech\): transcript +\d+ +reply +\d+ +first audio +\d+ +end +\d+$/m);
    expect(out).toContain('(not applied: test mode)');
    expect(out).toContain('accept: PASSED in TEST MODE');
  });

  test("the dev orb-smoke Job's own args and env (test mode from the config) drive the same check", async () => {
    const job = synthEnvironment(dev).testPods.find((o) => o.kind === 'Job')!;
    const c = job.spec.template.spec.containers[0];
    expect(c.command).toEqual(['node', 'build/services/cli/orb.js', 'smoke', '--speak', '--accept']);
    const env = Object.fromEntries(
      c.env
        .filter((e: { value?: string }) => e.value !== undefined && e.value !== '')
        .map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(env).toMatchObject({ ORB_ACCEPT_TEST_MODE: 'true', ORB_ACCEPT_MAX_WER: '0.25' });
    const out: string[] = [];
    // ORB_URL names the in-cluster Service: the flag points it at the local gateway; the golden
    // folder is the image's /app/share/golden there, the committed fixtures here.
    const code = await orbCli(
      [...c.command.slice(2), '--speak', '--url', stack.orbUrls[0], '--api-key', stack.apiKey, '--golden', GOLDEN, '--timeout', '120000'],
      { out: (x) => out.push(x), err: (x) => out.push(x), env },
    );
    expect(out.join('\n')).toContain('accept: PASSED in TEST MODE');
    expect(code).toBe(0);
  });

  test('the thresholds come from the config (env) and, applied to the tiny models, fail the check with a non-zero exit', async () => {
    const { code, out } = await accept([], { ORB_ACCEPT_MAX_WER: '0.2', ORB_ACCEPT_MAX_RT_WER: '0.3' });
    console.log(`orb smoke --accept (thresholds applied):\n${out}`);
    expect(code).toBe(1);
    expect(out).not.toContain('TEST MODE');
    expect(out).toMatch(/FAIL +ASR word error rate \d+\.\d{3} is above the threshold 0\.2$/m);
    expect(out).toMatch(/FAIL +TTS round-trip word error rate \d+\.\d{3} is above the threshold 0\.3$/m);
    expect(out).toContain(`every utterance was transcribed as "${TINY_WHISPER_TRANSCRIPT}": are these the tiny test models?`);
    expect(out).toMatch(/FAIL +golden-1: the ASR found no speech in the TTS audio$/m);
    expect(out).toMatch(/accept: FAILED \(6 problem\(s\)\)/);
  });
});
