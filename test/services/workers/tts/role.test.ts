/** @jest-environment ./test/support/onnx-node-environment.js */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import pino from 'pino';
import type Redis from 'ioredis';
import { createAcp, createEnvelope, jsonPart, textPart, type Acp } from '../../../../services/acp';
import { loadEnv } from '../../../../services/config/env';
import { WORKER_ENV } from '../../../../services/config/worker';
import { ttsRole } from '../../../../services/workers/tts/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../../support/vault';
import { TINY_PIPER_RATE, writeTinyPiperVoices } from '../../../../tools/tiny-models/piper';
import { waitUntil } from '../../../support/wait';

jest.setTimeout(120_000);
const prefix = uniquePrefix('tts');

describe('xtts role on the bus', () => {
  let dir: string;
  let redis: Redis;
  let acp: Acp;
  let worker: WorkerRuntime;

  beforeAll(async () => {
    dir = writeTinyPiperVoices(mkdtempSync(join(tmpdir(), 'tts-role-')));
    redis = testRedis();
    const cfg = loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '100', ACP_TRIM_INTERVAL_MS: '0', LOG_LEVEL: 'silent' });
    worker = new WorkerRuntime(ttsRole, {
      redis,
      worker: cfg,
      keyPrefix: prefix,
      env: { MODEL_DIR: dir, TTS_DEFAULT_VOICE: 'tiny-en' },
      http: false,
      log: pino({ level: 'silent' }),
    });
    await worker.start();
    acp = createAcp(redis, { prefix, blockMs: 100 });
  });
  afterAll(async () => {
    await worker?.stop();
    await acp?.close();
    if (redis) {
      await deletePrefix(redis, prefix);
      await redis.quit();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('appends one audio event per sentence, in order, the last one final, then turn.end', async () => {
    const session = 's-speak';
    const { seq } = await acp.events.append(session, { type: 'reply', turn: 't1', data: { text: 'x' } });
    await acp.bus.publish(
      'xtts',
      createEnvelope({
        id: 't1.tts',
        kind: 'tts.speak',
        session,
        turn: 't1',
        seq,
        timeoutMs: 60_000,
        parts: [textPart('Hello there. How are you today? Fine, thanks.'), jsonPart({ end_turn: true })],
      }),
    );
    expect(await acp.events.waitFor(session, seq, (e) => e.type === 'turn.end', { timeoutMs: 60_000 })).toBeTruthy();
    const events = (await acp.events.read(session, seq)).filter((e) => e.turn === 't1');
    expect(events.map((e) => e.type)).toEqual(['audio', 'audio', 'audio', 'turn.end']);
    const audio = events
      .slice(0, 3)
      .map((e) => e.data as { index: number; final: boolean; data: string; sample_rate: number; content_type: string; voice: string });
    expect(audio.map((a) => [a.index, a.final])).toEqual([
      [0, false],
      [1, false],
      [2, true],
    ]);
    expect(
      audio.every(
        (a) => a.sample_rate === TINY_PIPER_RATE && a.content_type === `audio/pcm;rate=${TINY_PIPER_RATE}` && a.voice === 'tiny-en',
      ),
    ).toBe(true);
    // 256 samples per phoneme id, 2 bytes per sample.
    for (const a of audio) expect(Buffer.from(a.data, 'base64').length % 512).toBe(0);
  });

  it('dead-letters a job without text instead of retrying it', async () => {
    await acp.bus.publish(
      'xtts',
      createEnvelope({ id: 't2.tts', kind: 'tts.speak', session: 's-empty', turn: 't2', timeoutMs: 60_000, parts: [jsonPart({})] }),
    );
    await waitUntil('the job in the xtts dead letters', async () => (await acp.bus.dlqSize('xtts')) >= 1, 30_000);
    const [dl] = await acp.bus.deadLetters('xtts');
    expect(dl).toMatchObject({ jobId: 't2.tts', code: 'ACP_ERR_REJECTED' });
  });
});
