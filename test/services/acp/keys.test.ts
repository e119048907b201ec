import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vaultKeys } from '../../../services/acp';

describe('vaultKeys', () => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'vault-keys.md'), 'utf8');
  const families = [...doc.matchAll(/^\| `([a-z]+):\*` +\|/gm)].map((m) => m[1]);
  const k = vaultKeys('p:');
  const all = [
    k.identitySeed,
    k.identityVersion,
    k.session('s'),
    k.sessionIndex('key'),
    k.turnEvents('s'),
    k.turnSeq('s'),
    k.turn('s', 't'),
    k.turnAudio('s', 't'),
    k.memory('s'),
    k.replica('pod'),
    k.rateLimit('x'),
    k.jobs('cali'),
    k.coreJobs(3),
    k.dlq('cali'),
    k.done('j'),
    k.models,
    k.turnAbandoned('s', 't'),
    k.turnDeadlines,
    k.alive('cali'),
    k.orbFence('pod'),
  ];

  test('the doc lists the key families', () => {
    expect(families).toEqual(expect.arrayContaining(['identity', 'session', 'turn', 'memory', 'orb', 'acp']));
  });

  test('every key is prefixed and belongs to a documented family', () => {
    for (const key of all) {
      expect(key.startsWith('p:')).toBe(true);
      expect(families).toContain(key.slice(2).split(':')[0]);
    }
  });

  test('every key name the doc shows is built by vaultKeys (doc and code in sync)', () => {
    const shown = [...doc.matchAll(/`((?:identity|session|turn|memory|orb|acp):[^`*]+)`/g)].map((m) => m[1]);
    const patterns = all.map((key) =>
      key
        .slice(2)
        .replace(/\bs\b/g, '{sid}')
        .replace(/:t(?=:|$)/, ':{turnId}')
        .replace(/index:key/, 'index:{keyId}')
        .replace(/replica:pod/, 'replica:{pod}')
        .replace(/fence:pod/, 'fence:{pod}')
        .replace(/jobs:cali/, 'jobs:{role}')
        .replace(/dlq:cali/, 'dlq:{role}')
        .replace(/done:j/, 'done:{jobId}')
        .replace(/core:3/, 'core:{n}')
        .replace(/alive:cali/, 'alive:{queue}'),
    );
    for (const name of shown) expect(patterns).toContain(name);
  });

  test('core ordinal and role streams', () => {
    expect(vaultKeys('').coreJobs(2)).toBe('acp:jobs:core:2');
    expect(vaultKeys('').jobs('core:2')).toBe('acp:jobs:core:2');
    expect(vaultKeys('x:').turnEvents('abc')).toBe('x:turn:abc:events');
  });
});
