/** Exemptions: the tools' own annotations, honoured per environment, any other reported. */
import { runPolicy } from '../../policy/engine';
import { ENV_PROFILES, TOOL_CHECKS, declaredExemptions, exemptedRules, policyExemptions } from '../../policy/exemptions';
import { looksSecret, secretContent } from '../../policy/rules/security';
import type { K8sObject } from '../../policy/types';
import { find, goodStack } from './fixtures';

/** dev's kind cluster: images loaded with `kind load` (IfNotPresent), one replica, no PriorityClass, no TLS. */
function devStack(): K8sObject[] {
  const o = goodStack();
  const gw = find(o, 'Deployment', 'orb-core');
  gw.spec.template.spec.containers[0].imagePullPolicy = 'IfNotPresent';
  delete gw.spec.template.spec.priorityClassName;
  gw.metadata.annotations = policyExemptions('I2', 'A7');
  delete find(o, 'Ingress', 'orb-core').spec.tls;
  find(o, 'Ingress', 'orb-core').metadata.annotations = policyExemptions('N4');
  return o;
}

describe('policyExemptions', () => {
  it("renders both tools' annotations for a rule", () => {
    expect(policyExemptions('I2')).toEqual({
      'polaris.fairwinds.com/pullPolicyNotAlways-exempt': 'true',
      'kube-score/ignore': 'container-image-pull-policy',
    });
  });

  it('joins kube-score checks of several rules in one annotation', () => {
    const a = policyExemptions('A1', 'N4');
    expect(a['kube-score/ignore']).toBe(
      'deployment-replicas,deployment-targeted-by-hpa-does-not-have-replicas-configured,ingress-targets-service',
    );
    expect(a['polaris.fairwinds.com/deploymentMissingReplicas-exempt']).toBe('true');
    expect(a['polaris.fairwinds.com/tlsSettingsMissing-exempt']).toBe('true');
  });

  it('only exempts A7 through Polaris (kube-score has no priority check)', () => {
    expect(policyExemptions('A7')).toEqual({ 'polaris.fairwinds.com/priorityClassNotSet-exempt': 'true' });
  });

  it('refuses rules no tool annotation can exempt', () => {
    expect(() => policyExemptions('P3')).toThrow("rule 'P3' has no Polaris or kube-score check");
    expect(() => policyExemptions('K1')).toThrow("rule 'K1'");
  });

  it('reads its own output back to the same rule IDs', () => {
    for (const id of Object.keys(TOOL_CHECKS) as (keyof typeof TOOL_CHECKS)[]) {
      const c = TOOL_CHECKS[id];
      if (c.polaris.length + c.kubeScore.length === 0) continue;
      const obj: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', annotations: policyExemptions(id) } };
      expect([...exemptedRules(obj)]).toEqual([id]);
    }
  });

  it('reads kube-score/ignore from the pod template too', () => {
    const o = goodStack();
    const gw = find(o, 'Deployment', 'orb-core');
    gw.spec.template.metadata.annotations = { 'kube-score/ignore': 'container-image-pull-policy, pod-probes' };
    expect(declaredExemptions(gw).map((e) => e.rule)).toEqual(['I2', 'P1']);
  });
});

describe('exemptions per environment', () => {
  it('allows exactly I2, A1, A7, N4 in dev and nothing in prod', () => {
    expect([...ENV_PROFILES.dev.exemptible].sort()).toEqual(['A1', 'A7', 'I2', 'N4']);
    expect(ENV_PROFILES.prod.exemptible).toEqual([]);
  });

  it('dev: allowed exemptions turn failures into exempt cells, no findings', () => {
    const report = runPolicy(devStack(), { env: 'dev' });
    expect(report.findings).toEqual([]);
    expect(report.exemptions.map((r) => `${r.rule} ${r.kind}/${r.name}`).sort()).toEqual([
      'A7 Deployment/orb-core',
      'I2 Deployment/orb-core',
      'N4 Ingress/orb-core',
    ]);
  });

  it('prod: the same annotations are findings, and the rules still fail', () => {
    const report = runPolicy(devStack(), { env: 'prod' });
    const exemptionFindings = report.findings.filter((f) => f.message.includes('is not allowed in prod'));
    expect(exemptionFindings.map((f) => `${f.rule} ${f.kind}/${f.name}`).sort()).toEqual([
      'A7 Deployment/orb-core',
      'I2 Deployment/orb-core',
      'I2 Deployment/orb-core',
      'N4 Ingress/orb-core',
      'N4 Ingress/orb-core',
    ]);
    expect(report.exemptions).toEqual([]);
    expect(
      report.results
        .filter((r) => r.verdict === 'fail')
        .map((r) => r.rule)
        .sort(),
    ).toEqual(['A7', 'I2', 'N4']);
  });

  it('prod: an exemption is reported even where the rule passes', () => {
    const o = goodStack();
    find(o, 'StatefulSet', 'core4').metadata.annotations = policyExemptions('S4');
    const report = runPolicy(o, { env: 'prod' });
    expect(report.findings).toHaveLength(2);
    expect(report.findings.every((f) => f.rule === 'S4' && f.name === 'core4' && /not allowed in prod/.test(f.message))).toBe(true);
  });

  it('dev: an exemption outside I2 A1 A7 N4 is a finding', () => {
    const o = goodStack();
    find(o, 'Deployment', 'orb-core').metadata.annotations = { 'polaris.fairwinds.com/runAsRootAllowed-exempt': 'true' };
    const report = runPolicy(o, { env: 'dev' });
    expect(report.findings).toEqual([
      expect.objectContaining({
        rule: 'S1',
        kind: 'Deployment',
        name: 'orb-core',
        message: expect.stringContaining('exemptible here: I2, A1, A7, N4'),
      }),
    ]);
  });

  it('an unknown environment is held to prod', () => {
    const report = runPolicy(devStack(), { env: 'staging' });
    expect(report.findings.some((f) => /not allowed in staging/.test(f.message))).toBe(true);
  });

  it('an exemption naming an unknown check is a finding (a typo must not look exempt)', () => {
    const o = goodStack();
    find(o, 'Deployment', 'orb-core').metadata.annotations = { 'kube-score/ignore': 'container-image-pul-policy' };
    const report = runPolicy(o, { env: 'dev' });
    expect(report.findings.map((f) => f.message)).toEqual([expect.stringContaining('names a check this policy does not know')]);
  });
});

describe('S10 secret-looking names', () => {
  it.each([
    ['REDIS_PASSWORD', true],
    ['ORB_API_KEYS', true],
    ['apiKey', true],
    ['GITHUB_TOKEN', true],
    ['client_secret', true],
    ['VAULT_KEY_PREFIX', false],
    ['TOKEN_PATH', false],
    ['MONKEY_LEVEL', false],
    ['KEYCLOAK_URL', false],
    ['PORT', false],
  ])('%s -> %s', (name, expected) => {
    expect(looksSecret(name)).toBe(expected);
  });
});

describe('S10 secret-looking config content', () => {
  it.each([
    ['-----BEGIN RSA PRIVATE KEY-----\nMIIE...', ['a PEM private key']],
    ['user orb on >s3cret ~orb:* +@all', ['a Redis ACL password']],
    [`user orb on #${'ab'.repeat(32)} ~orb:*`, ['a Redis ACL password']],
    ['requirepass hunter2', ['a Redis password directive']],
    ['{"token": "abc123"}', ['a literal credential']],
    ['api_key=abc123', ['a literal credential']],
  ])('flags %j', (text, expected) => {
    expect(secretContent(text)).toEqual(expected);
  });

  it.each([
    'echo "user $user reset on #$hash $(cat "$rules")" >> "$tmp"',
    'export REDISCLI_AUTH="${REDIS_PASSWORD:-}"',
    'password: ${REDIS_PASSWORD}',
    'aclfile /etc/redis/acl/users.acl',
    '{"max_tokens": 256, "secretary": "none"}',
    'echo failed >&2',
  ])('leaves %j alone', (text) => {
    expect(secretContent(text)).toEqual([]);
  });
});
