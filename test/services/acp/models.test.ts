import type Redis from 'ioredis';
import { ModelRegistry, vaultKeys, type ServedModel } from '../../../services/acp';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';

const whisper: ServedModel = {
  id: 'openai/whisper-small',
  task: 'automatic-speech-recognition',
  created: 1700000000,
  owned_by: 'openai',
  languages: ['en'],
};

describe('ModelRegistry: what the workers loaded, in the real vault', () => {
  const prefix = uniquePrefix('models');
  let redis: Redis;
  let registry: ModelRegistry;
  beforeAll(() => {
    redis = testRedis();
    registry = new ModelRegistry(redis, vaultKeys(prefix));
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('lists announcements until they expire or are withdrawn, and removes stale and unreadable entries', async () => {
    await registry.announce('whisperx', 'whisperx-0', [whisper], 60_000);
    await registry.announce('xtts', 'xtts-0', [], 60_000);
    expect((await registry.live()).map((a) => [a.role, a.consumer, a.models.map((m) => m.id)]).sort()).toEqual([
      ['whisperx', 'whisperx-0', ['openai/whisper-small']],
      ['xtts', 'xtts-0', []],
    ]);
    await registry.withdraw('xtts', 'xtts-0');
    await redis.hset(`${prefix}acp:models`, 'garbage:1', '{not json');
    // A worker that died without withdrawing: its entry is past its expiry at read time.
    const later = Date.now() + 120_000;
    expect(await registry.live(later)).toEqual([]);
    expect(await redis.hkeys(`${prefix}acp:models`)).toEqual([]);
  });
});
