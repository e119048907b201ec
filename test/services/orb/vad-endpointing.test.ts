/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * End of turn by the gateway's Silero VAD: a spoken sentence streamed in 20 ms frames, then
 * silence, closes the utterance on its own (no client commit); silence alone opens nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { WaveFile } from 'wavefile';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, Client, listen, makeApp, waitFor } from './support';

jest.setTimeout(120_000);
const prefix = uniquePrefix('orbvad');
const redis = testRedis();
let app: FastifyInstance;
let host: string;

function fixturePcm(): Buffer {
  const w = new WaveFile(readFileSync(join(__dirname, '../../fixtures/speech-16k.wav')));
  const s = (w.data as { samples: Uint8Array }).samples;
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
}

/** Sends PCM in 20 ms frames (640 bytes), the way a microphone client does. */
function stream(c: Client, pcm: Buffer): void {
  for (let off = 0; off < pcm.length; off += 640) c.ws.send(pcm.subarray(off, Math.min(pcm.length, off + 640)));
}

beforeAll(async () => {
  app = await makeApp(prefix, 'orb-vad', { ORB_VAD: 'true', ORB_VAD_SILENCE_MS: '300' });
  host = await listen(app);
});

afterAll(async () => {
  await app.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('speech then silence: speech_started, then the utterance is committed by the VAD and sent to ASR', async () => {
  const c = new Client(host, '/v1/session', auth('alice'));
  try {
    const ready = await c.next((m) => m.type === 'session.ready', 'ready');
    const speech = fixturePcm();
    const silence = Buffer.alloc(32_000); // 1 s
    stream(c, Buffer.concat([silence, speech, silence]));
    const started = await c.next((m) => m.type === 'input_audio.speech_started', 'speech_started');
    const committed = await c.next((m) => m.type === 'input_audio.committed', 'committed by the VAD');
    expect(committed).toMatchObject({ turn: started.turn, by: 'vad' });
    // The leading second of silence was not stored (only the pre-roll), the speech was.
    const bytes = committed.bytes as number;
    expect(bytes).toBeGreaterThan(speech.length / 2);
    expect(bytes).toBeLessThan(speech.length + 32_000);
    expect(await redis.strlen(`${prefix}turn:${ready.session}:${started.turn}:audio`)).toBe(bytes);
    const start = await c.next((m) => m.type === 'turn.start', 'turn.start');
    expect(start).toMatchObject({ turn: started.turn, data: { source: 'audio', audio_bytes: bytes } });
    // turn.start is appended just before the job is published: wait for the job, do not race it.
    await waitFor(
      async () =>
        ((await redis.xrange(`${prefix}acp:jobs:whisperx`, '-', '+')) as [string, string[]][]).some(
          ([, f]) => JSON.parse(f[1]).turn === started.turn,
        ),
      'the asr.transcribe job',
    );
  } finally {
    await c.close();
  }
});

test('silence alone opens no utterance', async () => {
  const c = new Client(host, '/v1/session', auth('alice'));
  try {
    const ready = await c.next((m) => m.type === 'session.ready', 'ready');
    stream(c, Buffer.alloc(64_000)); // 2 s
    c.send({ type: 'ping', id: 'after-silence' });
    await c.next((m) => m.type === 'pong', 'pong after the audio was processed');
    expect(c.messages.filter((m) => m.type.startsWith('input_audio.'))).toEqual([]);
    expect(await redis.hget(`${prefix}session:${ready.session}`, 'open_utterance')).toBeNull();
  } finally {
    await c.close();
  }
});
