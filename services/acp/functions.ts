/**
 * The vault's server-side logic: one Redis FUNCTION library, `orb`, loaded by a bootstrap step
 * (the seed Job's init container, `npm run dev`, the test setup) as the vault user `functions`
 * with FUNCTION LOAD REPLACE. Functions are persisted and replicated with the data, so a vault
 * restart or a failover keeps them, where EVAL's script cache would answer NOSCRIPT. Services
 * only FCALL them (their ACL has no EVAL, SCRIPT or FUNCTION LOAD).
 *
 * Redis 7.0 features only. Every function declares the keys it touches.
 */
import type Redis from 'ioredis';

/** Library name (`FUNCTION LIST LIBRARYNAME orb`). */
export const ORB_LIBRARY = 'orb';
/** Bumped with any change below; `orb_version` returns it so services can tell an old library. */
export const ORB_LIBRARY_VERSION = 6;

export const ORB_FUNCTIONS_LUA = `#!lua name=${ORB_LIBRARY}

-- Appends one event to a session stream: seq is INCR'd and used as the entry id, so it is monotonic
-- and gap-free per session whoever writes (gateway replicas, cores, CALI, xtts).
-- A session's keys live as long as the longest retention of anyone who writes them: the gateway
-- keeps a session ORB_SESSION_TTL_S (7 days by default), a worker's own default is shorter, and a
-- worker's append must not cut the life of events the gateway still promises. A key without a TTL
-- (just created) gets one (NX); one with a shorter TTL gets this one (GT). Both are EXPIRE, which
-- every writer's ACL user already has (FCALL runs inner commands under the caller's ACL).
local function keep_at_least(key, ttl_s)
  redis.call('EXPIRE', key, ttl_s, 'NX')
  redis.call('EXPIRE', key, ttl_s, 'GT')
end

-- opts: maxlen, retention_s, type, turn, data, ts, job
local function append(seq_key, events_key, o)
  local seq = redis.call('INCR', seq_key)
  redis.call('XADD', events_key, 'MAXLEN', '~', o.maxlen, seq .. '-0',
    'type', o.type, 'turn', o.turn, 'data', o.data, 'ts', o.ts, 'job', o.job)
  keep_at_least(seq_key, o.retention)
  keep_at_least(events_key, o.retention)
  return seq
end

local function dedupe_get(key, field)
  if key == nil or field == '' then return nil end
  return redis.call('HGET', key, field)
end

local function dedupe_set(key, field, ttl, seq)
  if key == nil or field == '' then return end
  redis.call('HSET', key, field, seq)
  redis.call('EXPIRE', key, ttl)
end

-- KEYS: seq, events, [dedupe]; ARGV: maxlen, retention_s, type, turn, data, ts, dedupe_field, dedupe_ttl_s, job
local function orb_append(keys, args)
  local prev = dedupe_get(keys[3], args[7])
  if prev then return {tonumber(prev), 1} end
  local seq = append(keys[1], keys[2], {maxlen = args[1], retention = args[2], type = args[3], turn = args[4],
    data = args[5], ts = args[6], job = args[9]})
  dedupe_set(keys[3], args[7], args[8], seq)
  return {seq, 0}
end

-- The one way a turn ends: the first turn.end is appended, every later one is answered with the
-- first one's seq (duplicate = 1) and writes nothing. The turn leaves the deadline index.
-- KEYS: seq, events, turn, deadlines, [dedupe]
-- ARGV: maxlen, retention_s, turn, data, ts, dedupe_field, dedupe_ttl_s, job, deadline_member, outcome, turn_ttl_s, only_if_started
local function orb_turn_end(keys, args)
  local prev = dedupe_get(keys[5], args[6])
  if prev then return {tonumber(prev), 1} end
  local ended = redis.call('HGET', keys[3], 'end_seq')
  if ended then
    redis.call('ZREM', keys[4], args[9])
    dedupe_set(keys[5], args[6], args[7], ended)
    return {tonumber(ended), 1}
  end
  if args[12] == '1' and redis.call('EXISTS', keys[3]) == 0 then
    -- The sweeper's call for a turn whose record has expired: nothing left to end.
    redis.call('ZREM', keys[4], args[9])
    return {0, 1}
  end
  local seq = append(keys[1], keys[2], {maxlen = args[1], retention = args[2], type = 'turn.end', turn = args[3],
    data = args[4], ts = args[5], job = args[8]})
  redis.call('HSET', keys[3], 'end_seq', seq, 'outcome', args[10])
  keep_at_least(keys[3], args[11])
  redis.call('ZREM', keys[4], args[9])
  dedupe_set(keys[5], args[6], args[7], seq)
  return {seq, 0}
end

-- turn.start (+ transcript) and the turn's first job(s) in one step. Refusals (backlog) are decided
-- before anything is written. The envelopes start with {"seq":-1, which becomes the turn.start seq.
-- KEYS: seq, events, turn, deadlines, job_stream_1..n
-- ARGV: maxlen, retention_s, turn, start_data, ts, transcript_data ('' = none), max_backlog, deadline_ms,
--       deadline_member, turn_ttl_s, env_1..n
local function orb_turn_start(keys, args)
  local started = redis.call('HGET', keys[3], 'start_seq')
  if started then return {tonumber(started), 1} end
  local max = tonumber(args[7])
  for i = 5, #keys do
    if redis.call('XLEN', keys[i]) >= max then
      return redis.error_reply('ACP_ERR_BACKLOG ' .. keys[i])
    end
  end
  local o = {maxlen = args[1], retention = args[2], type = 'turn.start', turn = args[3], data = args[4], ts = args[5], job = ''}
  local seq = append(keys[1], keys[2], o)
  if args[6] ~= '' then
    o.type = 'transcript'
    o.data = args[6]
    append(keys[1], keys[2], o)
  end
  for i = 5, #keys do
    local env = args[11 + i - 5]
    local patched, n = string.gsub(env, '^{"seq":%-1,', '{"seq":' .. seq .. ',', 1)
    if n ~= 1 then return redis.error_reply('ACP_ERR_ENVELOPE envelope must start with {"seq":-1,') end
    redis.call('XADD', keys[i], '*', 'env', patched)
  end
  redis.call('HSET', keys[3], 'start_seq', seq, 'deadline_ms', args[8])
  keep_at_least(keys[3], args[10])
  redis.call('ZADD', keys[4], args[8], args[9])
  return {seq, 0}
end

-- Moves a turn's deadline later (a spoken reply gets its own budget), unless it has ended.
-- KEYS: turn, deadlines; ARGV: deadline_member, deadline_ms
local function orb_turn_extend(keys, args)
  if redis.call('HGET', keys[1], 'end_seq') then return 0 end
  redis.call('ZADD', keys[2], 'GT', args[2], args[1])
  redis.call('HSET', keys[1], 'deadline_ms', args[2])
  return 1
end

-- Jobs to one or more streams in one step, refused as a whole when any stream is at its cap.
-- KEYS: stream_1..n; ARGV: max_backlog, env_1..n. Returns the entry ids.
local function orb_publish(keys, args)
  local max = tonumber(args[1])
  for i = 1, #keys do
    if redis.call('XLEN', keys[i]) >= max then return redis.error_reply('ACP_ERR_BACKLOG ' .. keys[i]) end
  end
  local ids = {}
  for i = 1, #keys do ids[i] = redis.call('XADD', keys[i], '*', 'env', args[i + 1]) end
  return ids
end

-- A job's results are stored: mark it done and acknowledge it together.
-- KEYS: done, stream; ARGV: entry, mark, ttl_s, group
local function orb_commit_job(keys, args)
  redis.call('HSET', keys[1], 'done', args[2])
  redis.call('EXPIRE', keys[1], args[3])
  return redis.call('XACK', keys[2], args[4], args[1])
end

-- A job's last event and its commit in one step (a worker's final emit): the append exactly as
-- orb_append (deduplicated on the done record), then the done mark and the XACK as orb_commit_job.
-- KEYS: seq, events, done, stream; ARGV: orb_append's nine, then entry, mark, ttl_s, group
local function orb_append_commit(keys, args)
  local r = orb_append({keys[1], keys[2], keys[3]}, {args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9]})
  orb_commit_job({keys[3], keys[4]}, {args[10], args[11], args[12], args[13]})
  return r
end

-- KEYS: stream, dlq; ARGV: entry, job, code, error, deliveries, raw, dlq_maxlen, ts, group
local function orb_dead_letter(keys, args)
  redis.call('XADD', keys[2], 'MAXLEN', '~', args[7], '*', 'entry', args[1], 'job', args[2], 'code', args[3],
    'error', args[4], 'deliveries', args[5], 'raw', args[6], 'ts', args[8])
  return redis.call('XACK', keys[1], args[9], args[1])
end

-- Prune expired leases, check the count, add: two replicas racing for the last slot cannot both win.
-- KEYS: leases; ARGV: now, expires_at, max, member
local function orb_socket_acquire(keys, args)
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', args[1])
  if redis.call('ZCARD', keys[1]) >= tonumber(args[3]) then return 0 end
  redis.call('ZADD', keys[1], args[2], args[4])
  redis.call('PEXPIREAT', keys[1], args[2])
  return 1
end

-- The gateway's shared rate limit (the @fastify/rate-limit Redis store's logic, as a function).
-- KEYS: counter; ARGV: window_ms, max, continue_exceeding, exponential_backoff. Returns {count, ttl_ms}.
local function orb_rate_limit(keys, args)
  local window = tonumber(args[1])
  local max = tonumber(args[2])
  local current = redis.call('INCR', keys[1])
  if current == 1 or (args[3] == 'true' and current > max) then
    redis.call('PEXPIRE', keys[1], window)
  elseif args[4] == 'true' and current > max then
    window = math.min(window * (2 ^ (current - max - 1)), 2 ^ 53 - 1)
    redis.call('PEXPIRE', keys[1], window)
  else
    window = redis.call('PTTL', keys[1])
  end
  return {current, window}
end

local function orb_version()
  return ${ORB_LIBRARY_VERSION}
end

redis.register_function('orb_append', orb_append)
redis.register_function('orb_turn_end', orb_turn_end)
redis.register_function('orb_turn_start', orb_turn_start)
redis.register_function('orb_turn_extend', orb_turn_extend)
redis.register_function('orb_publish', orb_publish)
redis.register_function('orb_commit_job', orb_commit_job)
redis.register_function('orb_append_commit', orb_append_commit)
redis.register_function('orb_dead_letter', orb_dead_letter)
redis.register_function('orb_socket_acquire', orb_socket_acquire)
redis.register_function('orb_rate_limit', orb_rate_limit)
redis.register_function{function_name = 'orb_version', callback = orb_version, flags = {'no-writes'}}
`;

/** Loads (or replaces) the library; the bootstrap step's one command. Returns the library name. */
export async function loadOrbFunctions(redis: Redis): Promise<string> {
  return String(await redis.call('FUNCTION', 'LOAD', 'REPLACE', ORB_FUNCTIONS_LUA));
}

/** The loaded library's version, or null when it is not loaded (a vault nobody bootstrapped). */
export async function orbFunctionsVersion(redis: Redis): Promise<number | null> {
  try {
    return Number(await redis.call('FCALL_RO', 'orb_version', '0'));
  } catch (err) {
    if (/function not found/i.test(String((err as Error).message))) return null;
    throw err;
  }
}

/** FCALL of an `orb` function with declared keys. */
export function fcall<T>(redis: Redis, fn: string, keys: readonly string[], args: readonly (string | number)[]): Promise<T> {
  return redis.call('FCALL', fn, keys.length, ...keys, ...args.map(String)) as Promise<T>;
}

/** True for the error a service gets when the bootstrap step has not loaded the library. */
export function isFunctionMissing(err: unknown): boolean {
  return /function not found/i.test(String((err as Error | undefined)?.message ?? err));
}
