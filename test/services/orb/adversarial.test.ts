/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * Adversarial input suite: a matrix of route × defect class (HTTP JSON, query and headers, multipart,
 * WebSocket frames, audio formats) against one real gateway with the real workers behind it (tiny
 * Whisper and Piper, the five cores, CALI) on the run's Redis. Every case says whether it must be
 * refused with a code or accepted; none may answer 5xx or hang past 10 s. The named cases are the
 * problems issue 13 found, each of which failed before its fix.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { asrRole } from '../../../services/workers/asr/role';
import { ttsRole } from '../../../services/workers/tts/role';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { startRedisServer } from '../../../tools/redis/redis-server';
import { writeTinyWhisper } from '../../../tools/tiny-models/whisper';
import { writeTinyPiperVoices } from '../../../tools/tiny-models/piper';
import { KEYS, listen, makeApp } from './support';
import { buildWav, defaultPcm16le } from './wav-builder';
import { readFileSync } from 'node:fs';
import { writeShippedIdentity, verdictWorkers, testWorkerConfig } from '../../support/verdict-workers';

jest.setTimeout(600_000);
const REPO = join(__dirname, '..', '..', '..');
const HANG_MS = 10_000;
const prefix = uniquePrefix('adv');
const clients: Redis[] = [];
const workers: WorkerRuntime[] = [];
let dir: string;
let app: FastifyInstance;
let host: string;
let sid: string;
const bearer = { authorization: `Bearer ${KEYS.alice}` };

type Expect = 'reject' | 'accept';
interface Outcome {
  status: number;
  code?: string;
  via: 'http' | 'ws-error' | 'ws-close' | 'ws-ok';
}
interface Case {
  route: string;
  defect: string;
  name: string;
  expect: Expect;
  run(): Promise<Outcome>;
}

const client = () => {
  const c = testRedis();
  clients.push(c);
  return c;
};

/** The error code wherever the route puts it (`code`, or OpenAI-style `error.code`). */
function codeOf(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { code?: unknown; error?: { code?: unknown } };
    const c = j?.code ?? j?.error?.code;
    return typeof c === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

async function httpCase(method: string, url: string, headers: Record<string, string>, body?: string | Buffer | FormData): Promise<Outcome> {
  const res = await fetch(`http://${host}${url}`, { method, headers, body, signal: AbortSignal.timeout(HANG_MS + 2000) });
  const text = await res.text();
  return { status: res.status, code: codeOf(text), via: 'http' };
}

const json =
  (url: string, body: string, extra: Record<string, string> = {}, method = 'POST') =>
  () =>
    httpCase(method, url, { ...bearer, 'content-type': 'application/json', ...extra }, body);
const audioTurn = (ctype: string, body: Buffer) => () =>
  httpCase('POST', `/v1/turns?session=${sid}`, { ...bearer, 'content-type': ctype }, body);

function form(fields: [string, string | Blob, string?][]): FormData {
  const f = new FormData();
  for (const [k, v, name] of fields) {
    if (typeof v === 'string') f.append(k, v);
    else f.append(k, v, name ?? 'speech.wav');
  }
  return f;
}
const speechWav = () => new Blob([readFileSync(join(REPO, 'test', 'fixtures', 'speech-16k.wav'))], { type: 'audio/wav' });
const transcribe = (fields: [string, string | Blob, string?][]) => () => httpCase('POST', '/v1/audio/transcriptions', bearer, form(fields));
const rawMultipart = (ctype: string, body: string | Buffer) => () =>
  httpCase('POST', '/v1/audio/transcriptions', { ...bearer, 'content-type': ctype }, body);

/** One WebSocket for the frame cases that leave the socket open: after each frame a ping says whether an error came first. */
class FrameProbe {
  private ws!: WebSocket;
  private msgs: { type: string; code?: string; status?: number; id?: unknown }[] = [];
  private n = 0;
  async open(): Promise<void> {
    this.ws = new WebSocket(`ws://${host}/v1/session?session=${sid}&vad=false`, { headers: bearer });
    this.ws.on('message', (d, bin) => {
      if (!bin) this.msgs.push(JSON.parse(d.toString()));
    });
    await new Promise<void>((ok, fail) => {
      this.ws.once('open', () => ok());
      this.ws.once('error', fail);
    });
  }
  async send(frame: string | Buffer, binary: boolean): Promise<Outcome> {
    if (this.ws.readyState !== WebSocket.OPEN) await this.open();
    const from = this.msgs.length;
    const id = `probe-${++this.n}`;
    this.ws.send(frame, { binary });
    this.ws.send(JSON.stringify({ type: 'ping', id }));
    const deadline = Date.now() + HANG_MS + 1000;
    for (;;) {
      const seen = this.msgs.slice(from);
      const pong = seen.findIndex((m) => m.type === 'pong' && m.id === id);
      if (pong >= 0) {
        const err = seen.slice(0, pong).find((m) => m.type === 'error');
        return err ? { status: err.status ?? 0, code: err.code, via: 'ws-error' } : { status: 200, via: 'ws-ok' };
      }
      if (Date.now() > deadline || this.ws.readyState !== WebSocket.OPEN) return { status: 0, via: 'ws-close' };
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  close(): void {
    this.ws?.terminate();
  }
}
const probe = new FrameProbe();
const frame = (data: unknown) => () => probe.send(typeof data === 'string' ? data : JSON.stringify(data), false);
const binaryFrame = (b: Buffer) => () => probe.send(b, true);

/** A frame that must close its own socket with a protocol close code. */
const closingFrame = (data: Buffer, binary: boolean) => async (): Promise<Outcome> => {
  const ws = new WebSocket(`ws://${host}/v1/session?vad=false`, { headers: bearer });
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  const closed = new Promise<number>((ok) => ws.once('close', (c) => ok(c)));
  ws.send(data, { binary });
  const code = await closed;
  return { status: code >= 1000 ? 400 : 500, code: `ws-close-${code}`, via: 'ws-close' };
};

/** Upgrade requests refused before the upgrade: their HTTP status and code. */
const upgrade = (path: string, headers: Record<string, string>) => () =>
  new Promise<Outcome>((ok, fail) => {
    const ws = new WebSocket(`ws://${host}${path}`, { headers });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => {
        req.destroy();
        ok({ status: res.statusCode ?? 0, code: codeOf(body), via: 'http' });
      });
    });
    ws.once('open', () => {
      ws.terminate();
      ok({ status: 101, via: 'ws-ok' });
    });
    ws.once('error', (e) => fail(e));
  });

function matrix(): Case[] {
  const cases: Case[] = [];
  const add = (route: string, defect: string, expect: Expect, name: string, run: () => Promise<Outcome>) =>
    cases.push({ route, defect, name, expect, run });
  const R = 'reject' as const;
  const A = 'accept' as const;

  // --- HTTP: JSON bodies on every JSON route -------------------------------------------------------
  const malformed = [
    '{',
    '{"text":',
    '[',
    'nul',
    '"',
    '{"text":"hi"}}',
    '{"text":"hi",}',
    "{'text':'hi'}",
    '{"text": NaN}',
    '{"text":"\\ud800"',
    '',
    ' ',
    '{"text":"hi"}garbage',
    '['.repeat(5000) + ']'.repeat(5000),
    '\u0000',
  ];
  for (const [route, url] of [
    ['POST /v1/turns', '/v1/turns'],
    ['POST /v1/sessions', '/v1/sessions'],
    ['POST /v1/audio/speech', '/v1/audio/speech'],
    ['POST /v1/session/tickets', '/v1/session/tickets'],
  ] as const) {
    malformed.forEach((b, i) => add(route, 'malformed JSON', R, `malformed #${i} ${JSON.stringify(b.slice(0, 12))}`, json(url, b)));
    add(route, 'prototype poisoning', R, '__proto__ key', json(url, '{"__proto__":{"x":1},"text":"hi"}'));
    add(route, 'content type', R, 'text/plain body', () =>
      httpCase('POST', url, { ...bearer, 'content-type': 'text/plain' }, '{"text":"hi"}'),
    );
    add(route, 'content type', R, 'form-urlencoded body', () =>
      httpCase('POST', url, { ...bearer, 'content-type': 'application/x-www-form-urlencoded' }, 'text=hi'),
    );
    add(
      route,
      'content type',
      R,
      'JSON labelled utf-16',
      json(url, '{"text":"hi"}', { 'content-type': 'application/json; charset=utf-16' }),
    );
    add(route, 'auth', R, 'no key', () => httpCase('POST', url, { 'content-type': 'application/json' }, '{"text":"hi"}'));
    add(route, 'auth', R, 'empty bearer', () =>
      httpCase('POST', url, { authorization: 'Bearer ', 'content-type': 'application/json' }, '{"text":"hi"}'),
    );
    add(route, 'auth', R, 'key with trailing junk', () =>
      httpCase('POST', url, { authorization: `Bearer ${KEYS.alice} x`, 'content-type': 'application/json' }, '{"text":"hi"}'),
    );
    add(route, 'auth', R, 'Basic scheme', () =>
      httpCase(
        'POST',
        url,
        { authorization: `Basic ${Buffer.from(`alice:${KEYS.alice}`).toString('base64')}`, 'content-type': 'application/json' },
        '{}',
      ),
    );
  }
  // Types are never coerced; values stay within their documented ranges.
  const turnBodies: [string, string][] = [
    ['text is a number', '{"text":123}'],
    ['text is true', '{"text":true}'],
    ['text is an array', '{"text":["hi"]}'],
    ['text is null', '{"text":null}'],
    ['speak is "true"', '{"text":"hi","speak":"true"}'],
    ['speak is 1', '{"text":"hi","speak":1}'],
    ['session is a number', '{"text":"hi","session":123}'],
    ['session not a uuid', '{"text":"hi","session":"../../etc"}'],
    ['text empty', '{"text":""}'],
    ['text whitespace only', '{"text":"   "}'],
    ['text tabs and newlines only', '{"text":"\\n\\t\\r"}'],
    ['text over 4000', JSON.stringify({ text: 'x'.repeat(4001) })],
    ['unknown field', '{"text":"hi","mood":"x"}'],
    ['no text', '{"speak":true}'],
    ['array body', '[{"text":"hi"}]'],
    ['string body', '"hi"'],
    ['number body', '42'],
    ['null body', 'null'],
  ];
  for (const [n, b] of turnBodies) add('POST /v1/turns', 'JSON types and ranges', R, n, json('/v1/turns', b));
  const sessionBodies: [string, string][] = [
    ['metadata is a string', '{"metadata":"x"}'],
    ['metadata value a number', '{"metadata":{"a":1}}'],
    ['metadata value null', '{"metadata":{"a":null}}'],
    ['metadata value over 256', JSON.stringify({ metadata: { a: 'x'.repeat(257) } })],
    ['33 metadata keys', JSON.stringify({ metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) })],
    ['unknown field', '{"owner":"bob"}'],
    ['array body', '[]'],
    ['number body', '1'],
  ];
  for (const [n, b] of sessionBodies) add('POST /v1/sessions', 'JSON types and ranges', R, n, json('/v1/sessions', b));
  const speech = (o: Record<string, unknown>) => JSON.stringify({ model: 'tts-1', voice: 'tiny-en', input: 'Hello.', ...o });
  const speechBodies: [string, string][] = [
    ['speed is a string', speech({ speed: '1.5' })],
    ['speed is true', speech({ speed: true })],
    ['speed 0', speech({ speed: 0 })],
    ['speed 5', speech({ speed: 5 })],
    ['input a number', speech({ input: 5 })],
    ['input empty', speech({ input: '' })],
    ['input whitespace only', speech({ input: '  \n ' })],
    ['input over 4096', speech({ input: 'x'.repeat(4097) })],
    ['voice a number', speech({ voice: 5 })],
    ['voice empty', speech({ voice: '' })],
    ['response_format ogg (not an OpenAI format)', speech({ response_format: 'ogg' })],
    ['response_format a number', speech({ response_format: 1 })],
    ['model an array', speech({ model: ['tts-1'] })],
    ['model missing', JSON.stringify({ voice: 'tiny-en', input: 'hi' })],
    ['input missing', JSON.stringify({ model: 'tts-1', voice: 'tiny-en' })],
    ['stream_format websocket', speech({ stream_format: 'websocket' })],
  ];
  for (const [n, b] of speechBodies) add('POST /v1/audio/speech', 'JSON types and ranges', R, n, json('/v1/audio/speech', b));
  add('POST /v1/session/tickets', 'JSON types and ranges', R, 'a body with fields', json('/v1/session/tickets', '{"key":"x"}'));

  // --- HTTP: query strings, params, methods --------------------------------------------------------
  const get =
    (url: string, headers: Record<string, string> = bearer) =>
    () =>
      httpCase('GET', url, headers);
  const badQueries: [string, string][] = [
    ['after_seq negative', '?after_seq=-1'],
    ['after_seq text', '?after_seq=abc'],
    ['after_seq float', '?after_seq=1.5'],
    ['after_seq huge', '?after_seq=9999999999999999999'],
    ['limit 0', '?limit=0'],
    ['limit text', '?limit=x'],
    ['limit over max', '?limit=10001'],
    ['unknown parameter', '?foo=1'],
    ['after_seq past the end', '?after_seq=999'],
  ];
  for (const [n, q] of badQueries) add('GET /v1/sessions/:id', 'query', R, n, () => httpCase('GET', `/v1/sessions/${sid}${q}`, bearer));
  for (const id of ['not-a-uuid', '00000000-0000-4000-8000-000000000000', 'x'.repeat(65), '%00', '..%2f..%2f'])
    add('GET /v1/sessions/:id', 'params', R, `id ${id.slice(0, 20)}`, get(`/v1/sessions/${id}`));
  add('POST /v1/turns', 'query', R, 'session query not a uuid', json('/v1/turns?session=abc', '{"text":"hi"}'));
  add('POST /v1/turns', 'query', R, 'speak=maybe', json('/v1/turns?speak=maybe', '{"text":"hi"}'));
  add('POST /v1/turns', 'query', R, 'unknown query parameter', json('/v1/turns?debug=1', '{"text":"hi"}'));
  for (const [m, u] of [
    ['PUT', '/v1/turns'],
    ['DELETE', `/v1/sessions/${sid}`],
    ['PATCH', '/v1/sessions'],
    ['GET', '/v1/turns'],
    ['GET', '/v1/audio/transcriptions'],
    ['POST', '/v1/nope'],
  ]) {
    add(`${m} ${u.replace(sid, ':id')}`, 'method/route', R, 'no such route', () => httpCase(m, u, bearer, m === 'GET' ? undefined : '{}'));
  }
  add(
    'GET /v1/identity',
    'headers',
    R,
    'x-request-id of 10 kB is replaced, bad key refused',
    get('/v1/identity', { authorization: 'Bearer nope-nope-nope-nope', 'x-request-id': 'x'.repeat(10_000) }),
  );

  // --- Multipart: POST /v1/audio/transcriptions ----------------------------------------------------
  const MP = 'multipart/form-data; boundary=XyZ';
  const partsOf = (...p: string[]) => `${p.map((x) => `--XyZ\r\n${x}`).join('\r\n')}\r\n--XyZ--\r\n`;
  const fieldPart = (name: string, value: string) => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`;
  const filePart = (bytes: string) =>
    `Content-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n${bytes}`;
  const rawBodies: [string, string, string | Buffer][] = [
    ['no boundary parameter', 'multipart/form-data', partsOf(fieldPart('model', 'whisper-1'))],
    ['boundary that never appears', 'multipart/form-data; boundary=Nope', partsOf(fieldPart('model', 'whisper-1'))],
    [
      'body cut off before the closing boundary',
      MP,
      `--XyZ\r\n${fieldPart('model', 'whisper-1')}\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF`,
    ],
    ['empty body', MP, ''],
    ['garbage body', MP, 'hello world'],
    ['only the closing boundary', MP, '--XyZ--\r\n'],
    ['part without Content-Disposition', MP, partsOf('Content-Type: text/plain\r\n\r\nwhisper-1')],
    ['part header without a blank line', MP, '--XyZ\r\nContent-Disposition: form-data; name="model"\r\nwhisper-1\r\n--XyZ--\r\n'],
    ['part without a name', MP, partsOf('Content-Disposition: form-data\r\n\r\nx', filePart('RIFF'))],
    [
      'JSON-typed field',
      MP,
      partsOf(`${fieldPart('model', '')}`.replace('\r\n\r\n', '\r\nContent-Type: application/json\r\n\r\n') + '{"a":1}', filePart('RIFF')),
    ],
    [
      'malformed JSON-typed field',
      MP,
      partsOf(`${fieldPart('model', '')}`.replace('\r\n\r\n', '\r\nContent-Type: application/json\r\n\r\n') + '{', filePart('RIFF')),
    ],
    ['__proto__ field', MP, partsOf(fieldPart('__proto__', 'x'), filePart('RIFF'))],
    ['two files', MP, partsOf(filePart('RIFF'), filePart('RIFF'), fieldPart('model', 'whisper-1'))],
    ['21 fields', MP, partsOf(...Array.from({ length: 21 }, (_, i) => fieldPart(`f${i}`, 'x')))],
    ['header line of 100 kB', MP, partsOf(`Content-Disposition: form-data; name="model"; x="${'y'.repeat(100_000)}"\r\n\r\nwhisper-1`)],
    ['multipart/mixed', 'multipart/mixed; boundary=XyZ', partsOf(fieldPart('model', 'whisper-1'))],
    ['JSON instead of multipart', 'application/json', '{"model":"whisper-1"}'],
  ];
  for (const [n, ct, b] of rawBodies) add('POST /v1/audio/transcriptions', 'multipart structure', R, n, rawMultipart(ct, b));
  const file = (): [string, Blob, string] => ['file', speechWav(), 'speech.wav'];
  const fieldCases: [string, [string, string | Blob, string?][]][] = [
    ['missing file', [['model', 'whisper-1']]],
    ['missing model', [file()]],
    ['model empty', [file(), ['model', ' ']]],
    [
      'file under another name',
      [
        ['audio', speechWav(), 'a.wav'],
        ['model', 'whisper-1'],
      ],
    ],
    ['language xx (no such Whisper language)', [file(), ['model', 'whisper-1'], ['language', 'xx']]],
    ['language fr (not in this model)', [file(), ['model', 'whisper-1'], ['language', 'fr']]],
    ['language EN (upper case)', [file(), ['model', 'whisper-1'], ['language', 'EN']]],
    ['language english', [file(), ['model', 'whisper-1'], ['language', 'english']]],
    ['temperature abc', [file(), ['model', 'whisper-1'], ['temperature', 'abc']]],
    ['temperature 2', [file(), ['model', 'whisper-1'], ['temperature', '2']]],
    ['temperature -0.1', [file(), ['model', 'whisper-1'], ['temperature', '-0.1']]],
    ['response_format mp4', [file(), ['model', 'whisper-1'], ['response_format', 'mp4']]],
    ['response_format JSON (case)', [file(), ['model', 'whisper-1'], ['response_format', 'JSON']]],
    ['timestamp granularity char', [file(), ['model', 'whisper-1'], ['timestamp_granularities[]', 'char']]],
    ['stream yes', [file(), ['model', 'whisper-1'], ['stream', 'yes']]],
    ['unknown field', [file(), ['model', 'whisper-1'], ['beam_size', '5']]],
    ['model twice', [file(), ['model', 'whisper-1'], ['model', 'whisper-2']]],
    ['prompt over 1024 bytes', [file(), ['model', 'whisper-1'], ['prompt', 'p'.repeat(2000)]]],
    [
      'empty file',
      [
        ['file', new Blob([]), 'a.wav'],
        ['model', 'whisper-1'],
      ],
    ],
    [
      'MP3 bytes',
      [
        ['file', new Blob([Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00xxxxxxxxxxxxxxxx', 'latin1')]), 'a.mp3'],
        ['model', 'whisper-1'],
      ],
    ],
    [
      'WAV truncated to 30 bytes',
      [
        ['file', new Blob([readFileSync(join(REPO, 'test', 'fixtures', 'speech-16k.wav')).subarray(0, 30)]), 'a.wav'],
        ['model', 'whisper-1'],
      ],
    ],
    [
      'audio/L16 part (its rate is not visible)',
      [
        ['file', new Blob([Buffer.alloc(3200)], { type: 'audio/L16' }), 'a.raw'],
        ['model', 'whisper-1'],
      ],
    ],
    [
      'audio/pcm part of odd length',
      [
        ['file', new Blob([Buffer.alloc(3201)], { type: 'audio/pcm' }), 'a.raw'],
        ['model', 'whisper-1'],
      ],
    ],
  ];
  for (const [n, f] of fieldCases) add('POST /v1/audio/transcriptions', 'multipart fields', R, n, transcribe(f));

  // --- Audio formats: POST /v1/turns ---------------------------------------------------------------
  const wavCases: [string, Buffer][] = [
    ['44.1 kHz', buildWav({ rate: 44_100 })],
    ['8 kHz', buildWav({ rate: 8000 })],
    ['stereo', buildWav({ channels: 2 })],
    ['8-bit', buildWav({ bits: 8, data: Buffer.alloc(320) })],
    ['24-bit', buildWav({ bits: 24, data: Buffer.alloc(960) })],
    ['32-bit float', buildWav({ tag: 3, bits: 32, data: Buffer.alloc(1280) })],
    ['mu-law', buildWav({ tag: 7, bits: 8, data: Buffer.alloc(320) })],
    ['A-law', buildWav({ tag: 6, bits: 8, data: Buffer.alloc(320) })],
    ['IMA ADPCM', buildWav({ tag: 0x11, bits: 4, blockAlign: 256, byteRate: 8000, data: Buffer.alloc(512) })],
    ['extensible float subformat', buildWav({ extensible: { subTag: 3 }, bits: 32, data: Buffer.alloc(1280) })],
    ['extensible with a foreign GUID', buildWav({ extensible: { guidTail: [1, 2, 3, 4, 5, 6, 7, 8] } })],
    ['extensible 12 valid bits', buildWav({ extensible: { validBits: 12 } })],
    ['extensible valid bits over container', buildWav({ extensible: { validBits: 24 } })],
    ['extensible cbSize 0', buildWav({ extensible: { cbSize: 0 } })],
    ['extensible stereo mask on mono', buildWav({ extensible: { mask: 0x3 } })],
    ['extensible fmt cut to 18 bytes', buildWav({ extensible: {}, fmtSize: 18 })],
    ['RIFF size larger than the file', buildWav({ riffSize: 100_000 })],
    ['RIFF size smaller than the file', buildWav({ riffSize: 100 })],
    ['data size larger than the data', buildWav({ dataSize: 64_000 })],
    ['data size 0xFFFFFFFF', buildWav({ dataSize: 0xffffffff })],
    ['data size odd (half a sample)', buildWav({ data: Buffer.alloc(641), dataSize: 641 })],
    ['block align 4 for mono 16-bit', buildWav({ blockAlign: 4 })],
    ['byte rate wrong', buildWav({ byteRate: 12_345 })],
    ['fmt chunk of 14 bytes', buildWav({ fmtSize: 14 })],
    ['no fmt chunk', buildWav({ omitFmt: true })],
    ['no data chunk', buildWav({ omitData: true })],
    ['data before fmt', buildWav({ dataFirst: true })],
    ['two fmt chunks', buildWav({ before: [['fmt ', buildWav().subarray(20, 36)]] })],
    ['RF64', buildWav({ magic: 'RF64' })],
    ['form AVI', buildWav({ form: 'AVI ' })],
    ['header only, no samples', buildWav({ data: Buffer.alloc(0) })],
    ['zero channels', buildWav({ channels: 0, blockAlign: 0, byteRate: 0 })],
    ['zero rate', buildWav({ rate: 0 })],
    ['truncated at 30 bytes', buildWav().subarray(0, 30)],
    ['truncated mid-data', buildWav().subarray(0, 300)],
    ['not RIFF at all', Buffer.from('hello world, not RIFF')],
    ['RIFF only', Buffer.from('RIFF')],
    ['two trailing junk bytes', buildWav({ trailing: Buffer.from([1, 2]) })],
  ];
  for (const [n, b] of wavCases) add('POST /v1/turns (audio/wav)', 'WAV structure', R, n, audioTurn('audio/wav', b));
  const pcmCases: [string, string, Buffer][] = [
    ['rate 8000', 'audio/pcm;rate=8000', Buffer.alloc(640)],
    ['rate declared twice', 'audio/pcm;rate=8000;rate=16000', Buffer.alloc(640)],
    ['rate not a number', 'audio/pcm;rate=abc', Buffer.alloc(640)],
    ['rate 16000.5', 'audio/pcm;rate=16000.5', Buffer.alloc(640)],
    ['rate empty', 'audio/pcm;rate=', Buffer.alloc(640)],
    ['2 channels', 'audio/pcm;rate=16000;channels=2', Buffer.alloc(640)],
    ['encoding mulaw', 'audio/pcm;rate=16000;encoding=mulaw', Buffer.alloc(640)],
    ['unknown parameter', 'audio/pcm;rate=16000;endian=big', Buffer.alloc(640)],
    ['malformed parameter', 'audio/pcm;rate', Buffer.alloc(640)],
    ['odd length', 'audio/pcm;rate=16000', Buffer.alloc(641)],
    ['empty', 'audio/pcm;rate=16000', Buffer.alloc(0)],
    ['audio/L16 without rate (RFC 2586 requires it)', 'audio/L16', Buffer.alloc(640)],
    ['audio/L16 at 8 kHz', 'audio/L16;rate=8000', Buffer.alloc(640)],
    ['octet-stream', 'application/octet-stream', Buffer.alloc(640)],
    ['audio/mpeg', 'audio/mpeg', Buffer.alloc(640)],
    ['audio/wav holding raw PCM', 'audio/wav', Buffer.alloc(640)],
  ];
  for (const [n, ct, b] of pcmCases) add('POST /v1/turns (raw PCM)', 'PCM declaration', R, n, audioTurn(ct, b));

  // --- WebSocket: upgrade requests and frames ------------------------------------------------------
  add('GET /v1/session', 'upgrade', R, 'plain GET without Upgrade', () => httpCase('GET', '/v1/session', bearer));
  add('GET /v1/session', 'upgrade', R, 'no key', upgrade('/v1/session', {}));
  add('GET /v1/session', 'upgrade', R, 'unknown session', upgrade('/v1/session?session=00000000-0000-4000-8000-000000000000', bearer));
  add('GET /v1/session', 'upgrade', R, 'malformed session id', upgrade('/v1/session?session=abc', bearer));
  add('GET /v1/session', 'upgrade', R, 'last_seq without session', upgrade('/v1/session?last_seq=3', bearer));
  add('GET /v1/session', 'upgrade', R, 'last_seq text', upgrade(`/v1/session?session=${sid}&last_seq=x`, bearer));
  add('GET /v1/session', 'upgrade', R, 'unknown query parameter', upgrade('/v1/session?x=1', bearer));
  add('GET /v1/session', 'upgrade', R, 'unknown ticket', upgrade(`/v1/session?ticket=${'A'.repeat(43)}`, {}));
  add('GET /v1/session', 'upgrade', R, 'wrong token', upgrade('/v1/session?token=nope-nope-nope-nope', {}));
  const frames: [string, unknown][] = [
    ['not JSON', 'hello'],
    ['JSON array', '[]'],
    ['JSON null', 'null'],
    ['JSON number', '42'],
    ['JSON string', '"ping"'],
    ['empty object', '{}'],
    ['type a number', { type: 1 }],
    ['unknown type', { type: 'session.update' }],
    ['ping with extra field', { type: 'ping', x: 1 }],
    ['text missing', { type: 'text' }],
    ['text empty', { type: 'text', text: '' }],
    ['text whitespace only', { type: 'text', text: ' \t\n' }],
    ['text over 4000', { type: 'text', text: 'x'.repeat(4001) }],
    ['text a number', { type: 'text', text: 5 }],
    ['speak "yes"', { type: 'text', text: 'hi', speak: 'yes' }],
    ['speak "true" (no coercion)', { type: 'text', text: 'hi', speak: 'true' }],
    ['format 8 kHz', { type: 'input_audio.format', encoding: 'pcm16le', sample_rate: 8000, channels: 1 }],
    ['format stereo', { type: 'input_audio.format', encoding: 'pcm16le', sample_rate: 16000, channels: 2 }],
    ['format opus', { type: 'input_audio.format', encoding: 'opus', sample_rate: 16000, channels: 1 }],
    ['format rate as a string', { type: 'input_audio.format', encoding: 'pcm16le', sample_rate: '16000', channels: 1 }],
    ['format missing fields', { type: 'input_audio.format' }],
    ['commit with no audio', { type: 'input_audio.commit' }],
    ['commit speak "true"', { type: 'input_audio.commit', speak: 'true' }],
    ['clear with extra', { type: 'input_audio.clear', all: true }],
    ['deeply nested JSON', '['.repeat(5000) + ']'.repeat(5000)],
    ['JSON with BOM', '\ufeff{"type":"ping"}'],
    ['NUL byte', '\u0000'],
  ];
  for (const [n, f] of frames) add('WS /v1/session text frame', 'JSON frame', R, n, frame(f));
  add('WS /v1/session binary frame', 'audio frame', R, 'odd length', binaryFrame(Buffer.alloc(641)));
  add('WS /v1/session binary frame', 'audio frame', R, 'one byte', binaryFrame(Buffer.alloc(1)));
  add('WS /v1/session binary frame', 'audio frame', R, 'empty', binaryFrame(Buffer.alloc(0)));
  add('WS /v1/session', 'frame size', R, 'frame over max_frame_bytes closes 1009', closingFrame(Buffer.alloc(70_000), true));
  add(
    'WS /v1/session',
    'frame encoding',
    R,
    'text frame of invalid UTF-8 closes 1007',
    closingFrame(Buffer.from([0xc3, 0x28, 0xff]), false),
  );

  // --- Accepted: the same routes with valid input (real workers answer) -----------------------------
  add('POST /v1/turns', 'valid', A, 'text turn', json('/v1/turns', '{"text":"hello there"}'));
  // OpenAI parity (issue 15): these are the API's own values, accepted.
  add('POST /v1/audio/speech', 'valid', A, 'response_format mp3', json('/v1/audio/speech', speech({ response_format: 'mp3' })));
  add('POST /v1/audio/speech', 'valid', A, 'stream_format sse', json('/v1/audio/speech', speech({ stream_format: 'sse' })));
  for (const [n, f] of [
    ['language empty (unset, as OpenAI reads it)', [file(), ['model', 'whisper-1'], ['language', '']]],
    ['temperature 1e0', [file(), ['model', 'whisper-1'], ['temperature', '1e0']]],
    ['stream true', [file(), ['model', 'whisper-1'], ['stream', 'true']]],
  ] as [string, [string, string | Blob, string?][]][])
    add('POST /v1/audio/transcriptions', 'valid', A, n, transcribe(f));
  add('POST /v1/sessions', 'valid', A, 'session with metadata', json('/v1/sessions', '{"metadata":{"client":"adv"}}'));
  add('POST /v1/session/tickets', 'valid', A, 'ticket', () => httpCase('POST', '/v1/session/tickets', bearer));
  add(
    'POST /v1/turns (audio/wav)',
    'valid',
    A,
    'WAVE_FORMAT_EXTENSIBLE PCM 16 kHz mono',
    audioTurn('audio/wav', buildWav({ extensible: {} })),
  );
  add('POST /v1/turns (audio/wav)', 'valid', A, 'RIFX (big-endian) WAV', audioTurn('audio/wav', buildWav({ order: 'BE' })));
  add(
    'POST /v1/turns (audio/wav)',
    'valid',
    A,
    'LIST chunk and odd-sized chunk before fmt',
    audioTurn('audio/wav', buildWav({ before: [['LIST', Buffer.from('INFOx')]] })),
  );
  add('POST /v1/turns (raw PCM)', 'valid', A, 'audio/L16;rate=16000', audioTurn('audio/L16;rate=16000', defaultPcm16le().swap16()));
  add('POST /v1/turns (raw PCM)', 'valid', A, 'audio/pcm; rate="16000" (quoted)', audioTurn('audio/pcm; rate="16000"', defaultPcm16le()));
  add(
    'POST /v1/audio/transcriptions',
    'valid',
    A,
    'WAV, language en, verbose_json',
    transcribe([
      file(),
      ['model', 'whisper-1'],
      ['language', 'en'],
      ['response_format', 'verbose_json'],
      ['timestamp_granularities[]', 'word'],
      ['temperature', '0.2'],
    ]),
  );
  add('POST /v1/audio/speech', 'valid', A, 'wav of tiny-en', json('/v1/audio/speech', speech({})));
  add('WS /v1/session text frame', 'valid', A, 'ping', frame({ type: 'ping', id: 1 }));
  add(
    'WS /v1/session text frame',
    'valid',
    A,
    'declared format',
    frame({ type: 'input_audio.format', encoding: 'pcm16le', sample_rate: 16000, channels: 1 }),
  );
  add('WS /v1/session binary frame', 'valid', A, '20 ms of audio', binaryFrame(Buffer.alloc(640)));
  add('WS /v1/session text frame', 'valid', A, 'clear', frame({ type: 'input_audio.clear' }));
  add('WS /v1/session text frame', 'valid', A, 'text turn', frame({ type: 'text', text: 'hello' }));
  return cases;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orb-adv-'));
  writeTinyWhisper(join(dir, 'whisper'));
  writeTinyPiperVoices(join(dir, 'voices'));
  await writeShippedIdentity(client(), prefix);
  workers.push(...verdictWorkers(client, prefix, 100));
  const log = (await import('pino')).default({ level: 'silent' });
  workers.push(
    new WorkerRuntime(asrRole, {
      redis: client(),
      worker: testWorkerConfig('whisperx-0', 100),
      keyPrefix: prefix,
      env: { MODEL_DIR: join(dir, 'whisper') },
      http: false,
      log,
    }),
  );
  workers.push(
    new WorkerRuntime(ttsRole, {
      redis: client(),
      worker: testWorkerConfig('xtts-0', 100),
      keyPrefix: prefix,
      env: { MODEL_DIR: join(dir, 'voices') },
      http: false,
      log,
    }),
  );
  await Promise.all(workers.map((w) => w.start()));
  app = await makeApp(prefix, 'orb-adv', {
    ORB_TURN_DEADLINE_MS: '20000',
    ORB_RATE_LIMIT_MAX: '100000',
    ORB_ASR_LANGUAGES: 'en,de',
    ORB_WS_MESSAGES_PER_S: '1000',
    ORB_WS_AUDIO_REALTIME: '100',
  });
  host = await listen(app);
  sid = ((await (await fetch(`http://${host}/v1/sessions`, { method: 'POST', headers: bearer })).json()) as { id: string }).id;
  await probe.open();
});

afterAll(async () => {
  probe.close();
  await app?.close();
  await Promise.all(workers.map((w) => w.stop()));
  await deletePrefix(clients[0], prefix);
  await Promise.all(clients.map((c) => c.quit()));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a case under the hang bound: classified as accepted, rejected with a code, 5xx, hung, or wrong. */
async function attempt(
  c: Case,
): Promise<{ c: Case; cls: 'accepted' | 'rejected' | '5xx' | 'hung' | 'uncoded'; out?: Outcome; ms: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((ok) => {
    timer = setTimeout(() => ok('hung'), HANG_MS);
  });
  try {
    const out = await Promise.race([c.run(), hung]);
    const ms = Date.now() - t0;
    if (out === 'hung') return { c, cls: 'hung', ms };
    if (out.status >= 500) return { c, cls: '5xx', out, ms };
    if ((out.status >= 200 && out.status < 300) || out.via === 'ws-ok') return { c, cls: 'accepted', out, ms };
    return { c, cls: out.code ? 'rejected' : 'uncoded', out, ms };
  } catch (err) {
    return {
      c,
      cls: (err as Error).name === 'TimeoutError' ? 'hung' : '5xx',
      out: { status: 0, code: (err as Error).message, via: 'http' },
      ms: Date.now() - t0,
    };
  } finally {
    clearTimeout(timer);
  }
}

test('adversarial matrix: every bad input refused with a code, valid ones accepted, no 5xx, no hang', async () => {
  const cases = matrix();
  const results: Awaited<ReturnType<typeof attempt>>[] = [];
  // Frame cases share one socket and run in order; the rest four at a time.
  const ws = cases.filter((c) => c.route.startsWith('WS /v1/session text') || c.route.startsWith('WS /v1/session binary'));
  const rest = cases.filter((c) => !ws.includes(c));
  for (const c of ws) results.push(await attempt(c));
  for (let i = 0; i < rest.length; i += 4) results.push(...(await Promise.all(rest.slice(i, i + 4).map(attempt))));
  const count = (cls: string) => results.filter((r) => r.cls === cls).length;
  const byRoute = new Map<string, number>();
  for (const r of results) byRoute.set(`${r.c.route} × ${r.c.defect}`, (byRoute.get(`${r.c.route} × ${r.c.defect}`) ?? 0) + 1);
  const wrong = results.filter((r) => (r.c.expect === 'reject' ? r.cls !== 'rejected' : r.cls !== 'accepted'));
  console.log(
    [
      `adversarial: tried ${results.length}, rejected with a code ${count('rejected')}, accepted ${count('accepted')}, 5xx ${count('5xx')}, ` +
        `hung past ${HANG_MS / 1000} s ${count('hung')}, refused without a code ${count('uncoded')}; not as expected ${wrong.length}`,
      `matrix (${byRoute.size} route × defect cells): ${[...byRoute].map(([k, n]) => `${k}: ${n}`).join('; ')}`,
      `slowest: ${[...results]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5)
        .map((r) => `${r.c.route} ${r.c.name} ${r.ms} ms`)
        .join('; ')}`,
      ...wrong.map((r) => `  UNEXPECTED ${r.c.route} | ${r.c.defect} | ${r.c.name}: ${r.cls} ${JSON.stringify(r.out)} (${r.ms} ms)`),
    ].join('\n'),
  );
  expect(results.length).toBeGreaterThanOrEqual(200);
  expect(count('5xx')).toBe(0);
  expect(count('hung')).toBe(0);
  expect(wrong.map((r) => `${r.c.route} | ${r.c.name}: ${r.cls} ${JSON.stringify(r.out)}`)).toEqual([]);
});

describe('named cases: each problem issue 13 found, with the answer it must get now', () => {
  const post = (url: string, headers: Record<string, string>, body?: string | Buffer | FormData) =>
    fetch(`http://${host}${url}`, { method: 'POST', headers: { ...bearer, ...headers }, body, signal: AbortSignal.timeout(HANG_MS) });
  const storedAudio = async (res: Response) => {
    const { session, turn } = (await res.json()) as { session: string; turn: string };
    return clients[0].getBuffer(`${prefix}turn:${session}:${turn}:audio`);
  };

  test('a multipart body cut off before its closing boundary: 400 with a code (was 500)', async () => {
    const res = await post(
      '/v1/audio/transcriptions',
      { 'content-type': 'multipart/form-data; boundary=XyZ' },
      '--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF',
    );
    expect(res.status).toBe(400);
    expect(codeOf(await res.text())).toBe('ORB_ERR_AUDIO_REQUEST');
  });

  test('an unknown language: 400 ORB_ERR_UNSUPPORTED_PARAMETER before any job (was 5 retries and 502 after ~27 s)', async () => {
    const before = await clients[0].xlen(`${prefix}acp:jobs:whisperx`);
    const t0 = Date.now();
    const f = form([
      ['file', speechWav(), 'speech.wav'],
      ['model', 'whisper-1'],
      ['language', 'xx'],
    ]);
    const res = await post('/v1/audio/transcriptions', {}, f);
    expect({ status: res.status, code: codeOf(await res.text()) }).toEqual({ status: 400, code: 'ORB_ERR_UNSUPPORTED_PARAMETER' });
    expect(Date.now() - t0).toBeLessThan(HANG_MS);
    expect(await clients[0].xlen(`${prefix}acp:jobs:whisperx`)).toBe(before);
  });

  test('whitespace-only speech input: 400 (was 502 from the worker)', async () => {
    const res = await post(
      '/v1/audio/speech',
      { 'content-type': 'application/json' },
      JSON.stringify({ model: 'tts-1', voice: 'tiny-en', input: ' \n\t ' }),
    );
    expect({ status: res.status, code: codeOf(await res.text()) }).toEqual({ status: 400, code: 'ORB_ERR_BAD_REQUEST' });
  });

  test('a declared PCM rate is honoured or refused: two rates refused, audio/L16 swapped from network byte order', async () => {
    const twice = await post(`/v1/turns?session=${sid}`, { 'content-type': 'audio/pcm;rate=8000;rate=16000' }, Buffer.alloc(640));
    expect({ status: twice.status, code: codeOf(await twice.text()) }).toEqual({ status: 415, code: 'ORB_ERR_AUDIO_FORMAT' });
    const l16 = await post(`/v1/turns?session=${sid}`, { 'content-type': 'audio/L16;rate=16000' }, defaultPcm16le().swap16());
    expect(l16.status).toBe(200);
    expect((await storedAudio(l16))?.equals(defaultPcm16le())).toBe(true);
  });

  test('WAV by its spec: RIFX decoded to little-endian, extensible PCM accepted, a lying data size refused', async () => {
    const rifx = await post(`/v1/turns?session=${sid}`, { 'content-type': 'audio/wav' }, buildWav({ order: 'BE' }));
    expect(rifx.status).toBe(200);
    expect((await storedAudio(rifx))?.equals(defaultPcm16le())).toBe(true);
    const ext = await post(`/v1/turns?session=${sid}`, { 'content-type': 'audio/wav' }, buildWav({ extensible: {} }));
    expect(ext.status).toBe(200);
    expect((await storedAudio(ext))?.equals(defaultPcm16le())).toBe(true);
    const lying = await post(`/v1/turns?session=${sid}`, { 'content-type': 'audio/wav' }, buildWav({ dataSize: 64_000 }));
    expect({ status: lying.status, code: codeOf(await lying.text()) }).toEqual({ status: 400, code: 'ORB_ERR_AUDIO_MALFORMED' });
  });

  test('loosely typed JSON is refused, not coerced', async () => {
    const res = await post('/v1/turns', { 'content-type': 'application/json' }, '{"text":"hi","speak":"true"}');
    expect({ status: res.status, code: codeOf(await res.text()) }).toEqual({ status: 400, code: 'ORB_ERR_BAD_REQUEST' });
    const num = await post('/v1/turns', { 'content-type': 'application/json' }, '{"text":123}');
    expect({ status: num.status, code: codeOf(await num.text()) }).toEqual({ status: 400, code: 'ORB_ERR_BAD_REQUEST' });
  });

  test('a GET of /v1/session without Upgrade: 426 with Upgrade: websocket (was 400)', async () => {
    const res = await fetch(`http://${host}/v1/session`, { headers: bearer });
    expect({ status: res.status, code: codeOf(await res.text()) }).toEqual({ status: 426, code: 'ORB_ERR_UPGRADE_REQUIRED' });
    expect(res.headers.get('upgrade')).toBe('websocket');
  });

  test('a vault outage: 503 ORB_ERR_VAULT_UNAVAILABLE with Retry-After (was 500)', async () => {
    const vault = await startRedisServer();
    const gw = await makeApp('outage:', 'orb-adv-outage', { REDIS_URL: vault.url });
    const h = await listen(gw);
    try {
      const ok = await fetch(`http://${h}/v1/sessions`, { method: 'POST', headers: bearer });
      expect(ok.status).toBe(201);
      await vault.stop({ removeDir: true, signal: 'SIGKILL' });
      for (const [method, url] of [
        ['POST', '/v1/sessions'],
        ['GET', '/v1/sessions/00000000-0000-4000-8000-000000000000'],
        ['POST', '/v1/session/tickets'],
      ]) {
        const res = await fetch(`http://${h}${url}`, { method, headers: bearer, signal: AbortSignal.timeout(HANG_MS) });
        expect({ url, status: res.status, code: codeOf(await res.text()) }).toEqual({
          url,
          status: 503,
          code: 'ORB_ERR_VAULT_UNAVAILABLE',
        });
        expect(res.headers.get('retry-after')).toBe('5');
      }
    } finally {
      await gw.close();
    }
  });
});
