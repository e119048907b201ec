/** ORB_ENV: API key provisioning formats and errors that name the variable. */
import { createHash } from 'node:crypto';
import { ConfigError, loadEnv } from '../../../services/config/env';
import { ORB_ENV, parseApiKeys } from '../../../services/config/orb';
import { ApiKeyRing } from '../../../services/orb/auth';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('id:key entries are hashed at load; id:sha256:<hex> entries are kept as digests', () => {
  const keys = parseApiKeys(` web:web-key-0123456789ab , ops:sha256:${sha('ops-key-0123456789ab').toUpperCase()}`);
  expect(keys).toEqual([
    { id: 'web', sha256: sha('web-key-0123456789ab') },
    { id: 'ops', sha256: sha('ops-key-0123456789ab') },
  ]);
  expect(JSON.stringify(keys)).not.toContain('web-key-0123456789ab');
  const ring = new ApiKeyRing(keys);
  expect(ring.fromHeader('Bearer web-key-0123456789ab')).toBe('web');
  expect(ring.fromHeader('bearer ops-key-0123456789ab')).toBe('ops');
  expect(ring.fromHeader('Bearer web-key-0123456789ac')).toBeUndefined();
  expect(ring.fromHeader('web-key-0123456789ab')).toBeUndefined();
});

test.each([
  ['', 'must hold at least one key'],
  ['nocolon', 'entry 1 must be id:key or id:sha256:<hex>'],
  ['a:short', "entry 1 ('a'): key must be at least 16 characters"],
  ['a:sha256:abc', "entry 1 ('a'): sha256 digest must be 64 hex characters"],
  ['a b:0123456789abcdefgh', 'entry 1: key id must match'],
  ['a:0123456789abcdefgh,a:0123456789abcdefgi', "entry 2: duplicate key id 'a'"],
])('ORB_API_KEYS=%j is refused: %s', (raw, message) => {
  expect(() => parseApiKeys(raw)).toThrow(message);
});

test('loadEnv names every bad variable and never prints the keys', () => {
  let err: unknown;
  try {
    loadEnv(ORB_ENV, { ORB_API_KEYS: 'x:tooshort', PORT: '99999', ORB_VAD_THRESHOLD: 'high' });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const msg = (err as Error).message;
  expect(msg).toContain('ORB_API_KEYS=<redacted>');
  expect(msg).not.toContain('tooshort');
  expect(msg).toContain('PORT="99999": must be at most 65535');
  expect(msg).toContain('ORB_VAD_THRESHOLD="high": must be a number');
});

test('ORB_API_KEYS is the only required variable and is rendered as a secret', () => {
  const required = Object.values(ORB_ENV)
    .filter((v) => (v as { default?: unknown }).default === undefined)
    .map((v) => v.name);
  expect(required).toEqual(['ORB_API_KEYS']);
  expect(ORB_ENV.apiKeys.secret).toBe(true);
  expect(loadEnv(ORB_ENV, { ORB_API_KEYS: 'a:0123456789abcdefgh' })).toMatchObject({ port: 8080, vad: true, maxSocketsPerKey: 100 });
});
