/** The gateway's HTTP routes; every one has a JSON schema (validation + fast serialization). */
import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SESSION_ID_PATTERN, SESSION_ID_RE, SessionRecord } from './session-store';
import { checkRawPcm, parseMediaType, pcmFromWav } from './audio';
import { sessionReadHook, startSessionRead } from './session-read';
import * as E from './errors';

const open = { auth: false, rateLimit: false, pressureHandler: () => undefined } as const;

export const EVENT_SCHEMA = {
  type: 'object',
  required: ['seq', 'type', 'session', 'turn', 'ts'],
  properties: {
    seq: { type: 'integer' },
    type: { type: 'string' },
    session: { type: 'string' },
    turn: { type: 'string' },
    ts: { type: 'number' },
    job: { type: 'string' },
    data: {},
  },
} as const;

const ERROR_SCHEMA = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } },
} as const;

const SESSION_SCHEMA = {
  type: 'object',
  required: ['id', 'created_at', 'last_seq'],
  properties: {
    id: { type: 'string' },
    created_at: { type: 'string' },
    last_seq: { type: 'integer' },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    websocket: { type: 'string' },
  },
} as const;

const TURN_RESULT_SCHEMA = {
  type: 'object',
  required: ['session', 'turn', 'outcome', 'events'],
  properties: {
    session: { type: 'string' },
    turn: { type: 'string' },
    outcome: { type: 'string' },
    transcript: { type: ['string', 'null'] },
    reply: {},
    events: { type: 'array', items: EVENT_SCHEMA },
  },
} as const;

/** A non-negative integer seq no later than the session's last one, or ORB_ERR_BAD_SEQ. */
export function parseSeq(raw: unknown, lastSeq: number, name = 'after_seq'): number {
  if (raw === undefined || raw === '') return 0;
  const s = String(raw);
  if (!/^\d{1,15}$/.test(s)) throw new E.ORB_ERR_BAD_SEQ(`${name} must be a non-negative integer, got ${JSON.stringify(s).slice(0, 40)}`);
  const n = Number(s);
  if (n > lastSeq) throw new E.ORB_ERR_BAD_SEQ(`${name} ${n} is after the session's last seq ${lastSeq}`);
  return n;
}

async function ownedSession(app: FastifyInstance, req: FastifyRequest, sid: string): Promise<SessionRecord> {
  const s = await app.orb.sessions.get(sid, req.apiKeyId);
  if (!s) throw new E.ORB_ERR_UNKNOWN_SESSION(sid.slice(0, 64));
  return s;
}

export const httpRoutes = fp(
  async (app: FastifyInstance) => {
    app.get(
      '/livez',
      { config: open, schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
      async () => ({ status: 'ok' }),
    );

    const readiness = {
      type: 'object',
      properties: {
        status: { type: 'string' },
        pod: { type: 'string' },
        identity_version: { type: ['string', 'null'] },
        reason: { type: ['string', 'null'] },
        checks: {
          type: 'object',
          properties: {
            vault: { type: 'boolean' },
            identity: { type: 'boolean' },
            draining: { type: 'boolean' },
            turns: { type: 'boolean' },
          },
        },
      },
    } as const;
    app.get(
      '/readyz',
      {
        config: open,
        schema: { response: { 200: readiness, 503: readiness } },
      },
      async (_req, reply) => {
        const draining = app.drain.draining;
        const vault = draining ? false : await app.vault.ping();
        const identity = app.identity.version !== null;
        // Can a turn be taken: the FUNCTION library is there and no first-job queue is at its cap.
        const turnsReason = vault ? await app.turnHealth.check() : null;
        const turns = vault && turnsReason === null;
        const ready = vault && identity && !draining && turns;
        const reason = draining
          ? 'draining'
          : !vault
            ? 'vault not reachable'
            : !identity
              ? 'identity not seeded (seed-vault Job)'
              : turnsReason;
        if (!ready) reply.status(503).header('retry-after', '5');
        return {
          status: ready ? 'ready' : draining ? 'draining' : 'not_ready',
          pod: app.orb.config.podName,
          identity_version: app.identity.version,
          reason: ready ? null : reason,
          checks: { vault, identity, draining, turns },
        };
      },
    );

    app.post<{ Body: { metadata?: Record<string, string> } | null }>(
      '/v1/sessions',
      {
        schema: {
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: {
              metadata: { type: 'object', maxProperties: 32, additionalProperties: { type: 'string', maxLength: 256 } },
            },
          },
          response: { 201: SESSION_SCHEMA, '4xx': ERROR_SCHEMA },
        },
      },
      async (req, reply) => {
        const s = await app.orb.sessions.create(req.apiKeyId, app.orb.config.podName, req.body?.metadata ?? {});
        reply.status(201);
        return { id: s.id, created_at: s.createdAt, last_seq: 0, metadata: s.metadata, websocket: `/v1/session?session=${s.id}` };
      },
    );

    app.decorateRequest('sessionRead', null);
    app.get<{ Params: { id: string }; Querystring: { after_seq?: string; limit?: number } }>(
      '/v1/sessions/:id',
      {
        // The hot read: its own hook rate-limits in the same vault round trip as the read (session-read.ts).
        config: { rateLimit: false },
        onRequest: sessionReadHook(app),
        schema: {
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              after_seq: { type: 'string', maxLength: 20 },
              limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                ...SESSION_SCHEMA.properties,
                turns: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      turn: { type: 'string' },
                      started_seq: { type: 'integer' },
                      source: { type: 'string' },
                      transcript: { type: ['string', 'null'] },
                      reply: { type: ['string', 'null'] },
                      outcome: { type: ['string', 'null'] },
                    },
                  },
                },
                events: { type: 'array', items: EVENT_SCHEMA },
              },
            },
            '4xx': ERROR_SCHEMA,
          },
        },
      },
      async (req) => {
        const sid = req.params.id;
        if (!SESSION_ID_RE.test(sid)) throw new E.ORB_ERR_UNKNOWN_SESSION(sid.slice(0, 64));
        const requested = parseSeq(req.query.after_seq, Number.MAX_SAFE_INTEGER);
        const limit = req.query.limit ?? 1000;
        // Issued by the onRequest hook with the rate-limit step (one round trip); read now only if the
        // hook could not tell what validation would make of the query.
        let r = req.sessionRead;
        if (!r || r.sid !== sid || r.afterSeq !== requested || r.limit !== limit)
          r = startSessionRead(app, sid, req.apiKeyId, requested, limit);
        // Nothing read is returned unless the key owns the session.
        const [s, lastSeq, events, remainingMs] = await Promise.all([r.session, r.lastSeq, r.events, r.remainingMs]);
        if (!s) throw new E.ORB_ERR_UNKNOWN_SESSION(sid.slice(0, 64));
        parseSeq(req.query.after_seq, lastSeq);
        // Turn history: one line per turn whose events are in this page.
        const turns = new Map<
          string,
          { turn: string; started_seq: number; source: string; transcript: string | null; reply: string | null; outcome: string | null }
        >();
        for (const ev of events) {
          let t = turns.get(ev.turn);
          if (!t)
            turns.set(ev.turn, (t = { turn: ev.turn, started_seq: ev.seq, source: '', transcript: null, reply: null, outcome: null }));
          const d = (ev.data ?? {}) as Record<string, unknown>;
          if (ev.type === 'turn.start') t.source = String(d.source ?? '');
          if (ev.type === 'transcript' && d.final !== false) t.transcript = String(d.text ?? '');
          if (ev.type === 'reply') t.reply = String(d.text ?? '');
          if (ev.type === 'turn.end') t.outcome = String(d.outcome ?? 'ok');
        }
        // Reading keeps the session alive, written only once a tenth of its TTL has run out; the reply does not wait for it.
        if (app.orb.sessions.needsTouch(remainingMs))
          app.orb.sessions.touch(s.id, s.owner).catch((err) => req.log.warn({ err }, 'session touch failed'));
        return { id: s.id, created_at: s.createdAt, last_seq: lastSeq, metadata: s.metadata, turns: [...turns.values()], events };
      },
    );

    app.get(
      '/v1/identity',
      {
        schema: {
          response: {
            200: { type: 'object', properties: { version: { type: 'string' }, loaded_at: { type: 'string' }, document: {} } },
            '5xx': ERROR_SCHEMA,
          },
        },
      },
      async () => {
        if (app.identity.version === null) throw new E.ORB_ERR_IDENTITY_UNAVAILABLE('the seed Job has not written identity:version yet');
        return { version: app.identity.version, loaded_at: app.identity.loadedAt, document: app.identity.document };
      },
    );

    app.get(
      '/v1/replicas',
      {
        schema: {
          response: {
            200: {
              type: 'object',
              properties: {
                replicas: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      pod: { type: 'string' },
                      version: { type: 'string' },
                      identity_version: { type: ['string', 'null'] },
                      sessions: { type: 'integer' },
                      sockets: { type: 'integer' },
                      draining: { type: 'boolean' },
                      started_at: { type: 'string' },
                      updated_at: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async () => ({ replicas: await app.heartbeat.list() }),
    );

    app.post<{ Body: Buffer | { session?: string; text: string; speak?: boolean }; Querystring: { session?: string; speak?: boolean } }>(
      '/v1/turns',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              session: { type: 'string', pattern: SESSION_ID_PATTERN },
              speak: { type: 'boolean' },
            },
          },
          // Per media type: JSON text turns are validated here; audio bodies are checked by the handler (WAV header, rate).
          body: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['text'],
                  additionalProperties: false,
                  properties: {
                    session: { type: 'string', pattern: SESSION_ID_PATTERN },
                    text: { type: 'string', minLength: 1, maxLength: 4000, pattern: '\\S' },
                    speak: { type: 'boolean' },
                  },
                },
              },
              'audio/wav': { schema: {} },
              'audio/x-wav': { schema: {} },
              'audio/wave': { schema: {} },
              'audio/pcm': { schema: {} },
              'audio/l16': { schema: {} },
              'application/octet-stream': { schema: {} },
            },
          },
          response: { 200: TURN_RESULT_SCHEMA, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
        },
      },
      async (req) => {
        const ac = new AbortController();
        req.raw.once('close', () => {
          if (req.raw.destroyed && !req.raw.complete) ac.abort();
        });
        const ctype = String(req.headers['content-type'] ?? '');
        if (Buffer.isBuffer(req.body)) {
          const { type } = parseMediaType(ctype);
          if (type === 'application/octet-stream')
            throw new E.ORB_ERR_AUDIO_FORMAT('application/octet-stream does not say the format; send audio/wav or audio/pcm;rate=16000');
          const pcm = type === 'audio/pcm' || type === 'audio/l16' ? checkRawPcm(ctype, req.body) : pcmFromWav(req.body);
          const s = req.query.session
            ? await ownedSession(app, req, req.query.session)
            : await app.orb.sessions.create(req.apiKeyId, app.orb.config.podName);
          const turn = randomUUID();
          await app.orb.turns.appendAudio(s.id, turn, pcm);
          const started = await app.orb.turns.commitAudio(s.id, turn, { speak: req.query.speak, traceparent: traceparent(req) });
          return app.orb.turns.collect(s.id, started, 'audio', ac.signal);
        }
        const body = req.body as { session?: string; text?: unknown; speak?: boolean } | null;
        if (!body || typeof body !== 'object' || typeof body.text !== 'string') {
          throw new E.ORB_ERR_BAD_REQUEST(
            'body must be JSON {"text": "...", "session"?: "<id>"} or audio (audio/wav, audio/pcm;rate=16000)',
          );
        }
        const sid = body.session ?? req.query.session;
        const s = sid ? await ownedSession(app, req, sid) : await app.orb.sessions.create(req.apiKeyId, app.orb.config.podName);
        const started = await app.orb.turns.startText(s.id, body.text, {
          speak: body.speak ?? req.query.speak,
          traceparent: traceparent(req),
        });
        return app.orb.turns.collect(s.id, started, 'text', ac.signal);
      },
    );
  },
  { fastify: '5.x', name: 'orb-http-routes' },
);

function traceparent(req: FastifyRequest): string | undefined {
  const t = req.headers.traceparent;
  return typeof t === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(t) ? t : undefined;
}
