/** @jest-environment ./test/support/onnx-node-environment.js */
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import pino from 'pino';
import type Redis from 'ioredis';
import { createAcp, createEnvelope, jsonPart, type Acp, type TurnEvent } from '../../../../services/acp';
import { loadEnv } from '../../../../services/config/env';
import { WORKER_ENV } from '../../../../services/config/worker';
import { asrRole, audioFormatOf } from '../../../../services/workers/asr/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../../support/vault';
import { TINY_WHISPER_TRANSCRIPT, writeTinyWhisper } from '../../../../tools/tiny-models/whisper';
import { waitUntil } from '../../../support/wait';

jest.setTimeout(120_000);
const prefix = uniquePrefix('asr');
const pcm16 = readFileSync(join(__dirname, '../../../fixtures/speech-16k.wav')).subarray(44);

describe('whisperx role on the bus (voice turns as the gateway sends them)', () => {
  let dir: string;
  let redis: Redis;
  let acp: Acp;
  let worker: WorkerRuntime;

  beforeAll(async () => {
    dir = writeTinyWhisper(mkdtempSync(join(tmpdir(), 'asr-role-')));
    redis = testRedis();
    const cfg = loadEnv(WORKER_ENV, { ACP_BLOCK_MS: '100', ACP_TRIM_INTERVAL_MS: '0', LOG_LEVEL: 'silent' });
    worker = new WorkerRuntime(asrRole, {
      redis,
      worker: cfg,
      keyPrefix: prefix,
      env: { MODEL_DIR: dir },
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

  async function voiceTurn(session: string, audio: Buffer, until: string): Promise<TurnEvent[]> {
    const turn = 't1';
    const key = acp.keys.turnAudio(session, turn);
    // The gateway appends PCM16 frames as they arrive.
    for (let off = 0; off < audio.length; off += 3200) await redis.append(key, audio.subarray(off, off + 3200));
    const { seq } = await acp.events.append(session, { type: 'turn.start', turn, data: { source: 'audio' } });
    await acp.bus.publish(
      'whisperx',
      createEnvelope({
        id: `${session}.${turn}.asr`,
        kind: 'asr.transcribe',
        session,
        turn,
        seq,
        timeoutMs: 60_000,
        parts: [{ content_type: 'audio/pcm;rate=16000', content_ref: key }, jsonPart({ speak: false, cores: 5 })],
      }),
    );
    const end = await acp.events.waitFor(session, seq, (e) => e.type === until, { timeoutMs: 60_000 });
    expect(end).toBeTruthy();
    return acp.events.read(session, 0);
  }

  it('transcribes the utterance from its vault key and fans the transcript out to the five cores and CALI', async () => {
    const events = await voiceTurn('s-ok', pcm16, 'transcript');
    const transcript = events.find((e) => e.type === 'transcript');
    expect(transcript?.data).toMatchObject({ text: TINY_WHISPER_TRANSCRIPT, final: true, source: 'audio', language: 'en' });
    // fanOutTranscript runs after the transcript event: wait for the queues to fill, not for time.
    await waitUntil('the transcript on the cali queue', async () => (await acp.bus.backlog('cali')).length >= 1, 30_000);
    expect((await acp.bus.backlog('cali')).length).toBe(1);
    for (let n = 0; n < 5; n++) expect((await acp.bus.backlog(`core:${n}`)).length).toBe(1);
  });

  it('reports bad audio as turn.error with its code and ends the turn, without retrying', async () => {
    const events = await voiceTurn('s-bad', Buffer.alloc(3), 'turn.end');
    expect(events.map((e) => e.type)).toEqual(['turn.start', 'turn.error', 'turn.end']);
    expect(events[1].data).toMatchObject({ code: 'ORB_ERR_AUDIO_TRUNCATED', status: 400 });
    expect(events[2].data).toEqual({ outcome: 'error' });
    expect(await acp.bus.dlqSize('whisperx')).toBe(0);
  });

  it('ends a turn with no speech without asking the cores', async () => {
    const before = (await acp.bus.backlog('cali')).length;
    const events = await voiceTurn('s-silent', Buffer.alloc(32000 * 2), 'turn.end');
    expect(events.map((e) => e.type)).toEqual(['turn.start', 'transcript', 'turn.end']);
    expect(events[2].data).toMatchObject({ outcome: 'ok', reason: 'no_speech' });
    expect((await acp.bus.backlog('cali')).length).toBe(before);
  });

  it('reads the audio format from the part content type', () => {
    expect(audioFormatOf('audio/pcm;rate=8000')).toEqual({ format: 'pcm16', pcmSampleRate: 8000 });
    expect(audioFormatOf('audio/wav')).toEqual({ format: 'auto' });
  });
});
