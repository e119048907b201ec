/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * A spoken text turn on the real bus: five cores, CALI and xtts (tiny Piper voice). CALI queues
 * `tts.speak` after its reply, so the turn reads transcript → verdicts → reply → audio… → turn.end
 * with no gateway in the loop, and only xtts ends it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Acp, createAcp, startTextTurn } from '../../../../services/acp';
import { parseIdentity, writeIdentity } from '../../../../services/seed/identity';
import { caliRole } from '../../../../services/workers/cali/role';
import { coreRole } from '../../../../services/workers/core/role';
import { ttsRole } from '../../../../services/workers/tts/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { writeTinyPiperVoices } from '../../../../tools/tiny-models/piper';
import { deletePrefix, testRedis, uniquePrefix } from '../../../support/vault';
import { REPO, workerConfig } from '../../acp/helpers';

jest.setTimeout(120_000);
const prefix = uniquePrefix('spoken');
const clients: Redis[] = [];
const workers: WorkerRuntime[] = [];
let gateway: Acp;
let voices: string;

function client(): Redis {
  const c = testRedis();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  voices = writeTinyPiperVoices(mkdtempSync(join(tmpdir(), 'spoken-voices-')));
  const admin = client();
  await writeIdentity(
    admin,
    createAcp(admin, { prefix }).keys,
    parseIdentity(readFileSync(join(REPO, 'services', 'seed', 'identity.json'), 'utf8')),
  );
  for (let n = 0; n < 5; n++) {
    workers.push(
      new WorkerRuntime(coreRole, {
        redis: client(),
        keyPrefix: prefix,
        http: false,
        worker: workerConfig({ podName: `core4-${n}` }),
        env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
      }),
    );
  }
  workers.push(
    new WorkerRuntime(caliRole, {
      redis: client(),
      keyPrefix: prefix,
      http: false,
      worker: workerConfig({ podName: 'cali-0' }),
      env: { CALI_QUORUM_GRACE_MS: '3000' },
    }),
  );
  workers.push(
    new WorkerRuntime(ttsRole, {
      redis: client(),
      keyPrefix: prefix,
      http: false,
      worker: workerConfig({ podName: 'xtts-0' }),
      env: { MODEL_DIR: voices, TTS_DEFAULT_VOICE: 'tiny-en' },
    }),
  );
  await Promise.all(workers.map((w) => w.start()));
  gateway = createAcp(client(), { prefix });
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await gateway?.close();
  if (clients[0]) await deletePrefix(clients[0], prefix);
  await Promise.all(clients.map((c) => c.quit()));
  rmSync(voices, { recursive: true, force: true });
});

test('CALI hands a spoken reply to xtts: audio chunks follow the reply and xtts ends the turn once', async () => {
  const session = 's-spoken';
  const t = await startTextTurn(gateway.bus, gateway.events, {
    session,
    text: 'hello there. how are you?',
    timeoutMs: 20_000,
    speak: true,
  });
  const end = await gateway.events.waitFor(session, t.seq - 1, (e) => e.turn === t.turn && e.type === 'turn.end', { timeoutMs: 60_000 });
  expect(end).toBeDefined();
  const events = (await gateway.events.read(session, t.seq - 1)).filter((e) => e.turn === t.turn);
  const types = events.map((e) => e.type);
  const reply = types.indexOf('reply');
  const audio = events.filter((e) => e.type === 'audio');
  expect(reply).toBeGreaterThan(0);
  expect(audio.length).toBeGreaterThan(0);
  // Every audio chunk comes after the reply, and the one turn.end is last.
  expect(audio.every((e) => e.seq > events[reply].seq)).toBe(true);
  expect(types.filter((x) => x === 'turn.end')).toHaveLength(1);
  expect(types[types.length - 1]).toBe('turn.end');
  expect((audio[audio.length - 1].data as { final: boolean }).final).toBe(true);
});
