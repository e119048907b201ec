/**
 * dist/ must never hold a secret value: every rendered object (committed files and fresh synth)
 * is scanned; Secrets are created by operators (docs/deploy.md, scripts/dev-secrets.sh).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { dev, prod } from '../../charts/environments';
import { synthEnvironment, type K8sObject } from '../infra/manifests';

const SECRET_NAME = /(secret|password|passwd|token|api[-_]?key|private[-_]?key|credential)/i;
const SECRET_PATTERNS: [string, RegExp][] = [
  ['PEM private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
  ['AWS access key', /\bAKIA[0-9A-Z]{16}\b/],
  ['GitHub token', /\bgh[pousr]_[A-Za-z0-9]{36,}\b/],
  ['JWT', /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/],
  ['password in a URL', /[a-z]+:\/\/[^\s/:@]+:[^\s/@]+@/i],
  ['Redis AUTH / ACL password', /(requirepass|masterauth)\s+\S+|\buser \S+ [^\n]*\s>[^\s>]+/],
  ['orb API key entry', /\b[A-Za-z0-9_.-]{1,64}:(sha256:)?[A-Za-z0-9+/=_-]{16,}\b/],
];
// Long random-looking tokens (mixed case and digits), outside the places where hashes are expected.
function highEntropy(v: string): boolean {
  return (v.match(/[A-Za-z0-9+/_-]{32,}={0,2}/g) ?? []).some((t) => /[a-z]/.test(t) && /[A-Z]/.test(t) && /[0-9]/.test(t));
}

interface Finding {
  readonly where: string;
  readonly why: string;
}

/** Walks every string of an object; reports secret-looking values with their path. */
export function scanForSecrets(obj: K8sObject, source: string): Finding[] {
  const out: Finding[] = [];
  const where = (path: string) => `${source} ${obj.kind}/${obj.metadata?.name}${path}`;
  if (obj.kind === 'Secret') out.push({ where: where(''), why: 'a Secret object is rendered' });
  const walk = (v: unknown, path: string, key: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, key));
      return;
    }
    if (v && typeof v === 'object') {
      const rec = v as Record<string, unknown>;
      // An env var named like a secret with a literal value (POLICY S10).
      if (typeof rec.name === 'string' && 'value' in rec && SECRET_NAME.test(rec.name) && rec.value !== '') {
        out.push({ where: where(path), why: `env ${rec.name} has a literal value` });
      }
      for (const [k, x] of Object.entries(rec)) walk(x, `${path}.${k}`, k);
      return;
    }
    // Image references carry digests by design (POLICY I1 checks them).
    if (typeof v !== 'string' || key === 'image') return;
    for (const [why, re] of SECRET_PATTERNS) if (re.test(v)) out.push({ where: where(path), why });
    if (!path.includes('checksum') && highEntropy(v)) out.push({ where: where(path), why: 'high-entropy string' });
    if (
      SECRET_NAME.test(key) &&
      !['secretName', 'secretKeyRef', 'tlsSecretName'].includes(key) &&
      v.length >= 8 &&
      !/^[a-z0-9-]+$/.test(v) &&
      !/^[A-Z][A-Z0-9_]*$/.test(v)
    ) {
      out.push({ where: where(path), why: `field ${key} holds a value` });
    }
  };
  walk(obj, '', '');
  return out;
}

function distFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? distFiles(p) : p.endsWith('.yaml') ? [p] : [];
  });
}

describe('no secret value in dist/', () => {
  test('every committed file under dist/ scans clean', () => {
    const files = distFiles(join(__dirname, '..', '..', 'dist'));
    expect(files.length).toBeGreaterThan(10);
    const findings = files.flatMap((f) =>
      parseAllDocuments(readFileSync(f, 'utf8')).flatMap((d) => scanForSecrets(d.toJS() as K8sObject, f)),
    );
    expect(findings).toEqual([]);
  });

  test.each([
    ['dev', dev],
    ['prod', prod],
  ] as const)('every object synthesized for %s scans clean and takes passwords by secretKeyRef', (_n, cfg) => {
    const { objects, testPods } = synthEnvironment(cfg);
    expect([...objects, ...testPods].flatMap((o) => scanForSecrets(o, _n))).toEqual([]);
    const refs = JSON.stringify(objects).match(/"secretKeyRef":\{[^}]*\}/g) ?? [];
    expect(refs.length).toBeGreaterThanOrEqual(7);
  });

  test.each<[string, K8sObject]>([
    ['a Secret object', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { a: 'b' } }],
    [
      'a literal password env',
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: { containers: [{ env: [{ name: 'REDIS_PASSWORD', value: 'hunter2hunter2' }] }] },
      },
    ],
    [
      'a password in a URL',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { REDIS_URL: 'redis://orb:s3cr3tpw@vault:6379' } },
    ],
    [
      'an ACL line with a password',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { 'users.acl': 'user orb on >hunter2 ~*' } },
    ],
    ['an API key entry', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { keys: 'alice:0123456789abcdefXYZ' } }],
    [
      'a random token',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { x: 'q8Zr2VbN4kL0pW7sT1yU3mC6fH9jD5gA0eX2iO8nR4t' } },
    ],
    ['a PEM key', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { k: '-----BEGIN RSA PRIVATE KEY-----\nabc' } }],
  ])('the scanner flags %s', (_what, obj) => {
    expect(scanForSecrets(obj, 'planted').length).toBeGreaterThan(0);
  });
});
