import { AcpError, createEnvelope, parseEnvelope, textPart } from '../../../services/acp';

const valid = {
  protocol: 'acp/1.0',
  id: 'job-1',
  kind: 'core.classify',
  session: 's1',
  turn: 't1',
  seq: 3,
  deadline_ms: 1_795_000_000_000,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  parts: [
    { content_type: 'text/plain', content: 'hello' },
    { content_type: 'audio/pcm;rate=16000', content_ref: 'turn:s1:t1:audio' },
  ],
};

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AcpError);
    return (err as AcpError).code;
  }
  throw new Error('expected an AcpError');
}

describe('ACP/1.0 envelope', () => {
  test('accepts a valid envelope from an object, a JSON string and a Buffer', () => {
    expect(parseEnvelope(valid)).toEqual(valid);
    expect(parseEnvelope(JSON.stringify(valid))).toEqual(valid);
    expect(parseEnvelope(Buffer.from(JSON.stringify(valid)))).toEqual(valid);
  });

  test('accepts a newer minor version of the same major', () => {
    expect(parseEnvelope({ ...valid, protocol: 'acp/1.7' }).protocol).toBe('acp/1.7');
  });

  test.each([['acp/2.0'], ['acp/0.9'], ['acp/10.1']])('rejects major version %s with ACP_ERR_PROTOCOL', (protocol) => {
    expect(codeOf(() => parseEnvelope({ ...valid, protocol }))).toBe('ACP_ERR_PROTOCOL');
    expect(() => parseEnvelope({ ...valid, protocol })).toThrow(/this build speaks acp\/1\.x/);
  });

  test.each([['acp1.0'], ['http/1.1'], ['acp/1']])('rejects an unrecognisable protocol %s with ACP_ERR_PROTOCOL', (protocol) => {
    expect(codeOf(() => parseEnvelope({ ...valid, protocol }))).toBe('ACP_ERR_PROTOCOL');
  });

  const malformed: [string, unknown][] = [
    ['not JSON', '{"protocol": "acp/1.0",'],
    ['an array', [valid]],
    ['null', null],
    ['missing protocol', { ...valid, protocol: undefined }],
    ['missing id', { ...valid, id: undefined }],
    ['missing parts', { ...valid, parts: undefined }],
    ['deadline as string', { ...valid, deadline_ms: '1795000000000' }],
    ['negative seq', { ...valid, seq: -1 }],
    ['unknown top-level field', { ...valid, extra: 1 }],
    ['part with neither content nor content_ref', { ...valid, parts: [{ content_type: 'text/plain' }] }],
    ['part with both content and content_ref', { ...valid, parts: [{ content_type: 'text/plain', content: 'x', content_ref: 'k' }] }],
    ['part without content_type', { ...valid, parts: [{ content: 'x' }] }],
    ['bad traceparent', { ...valid, traceparent: 'nope' }],
    ['session with spaces', { ...valid, session: 'a b' }],
    ['bad kind', { ...valid, kind: 'Core Classify' }],
  ];
  test.each(malformed)('rejects %s with ACP_ERR_ENVELOPE', (_name, raw) => {
    expect(codeOf(() => parseEnvelope(JSON.parse(JSON.stringify(raw ?? null)) ?? raw))).toBe('ACP_ERR_ENVELOPE');
  });

  test('the error names the offending field', () => {
    expect(() => parseEnvelope({ ...valid, deadline_ms: 'soon' })).toThrow(/\/deadline_ms must be integer/);
  });

  test('createEnvelope fills protocol, id and a relative deadline, and validates', () => {
    const before = Date.now();
    const env = createEnvelope({ kind: 'core.classify', session: 's1', turn: 't1', timeoutMs: 5000, parts: [textPart('hi')] });
    expect(env.protocol).toBe('acp/1.0');
    expect(env.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(env.deadline_ms).toBeGreaterThanOrEqual(before + 5000);
    expect(env.deadline_ms).toBeLessThanOrEqual(Date.now() + 5000);
    expect(codeOf(() => createEnvelope({ kind: 'core.classify', session: 'bad session', turn: 't', parts: [] }))).toBe('ACP_ERR_ENVELOPE');
  });
});
