/**
 * The capacity benchmark's arithmetic: INFO parsed from a real redis-server (the fields it reads
 * exist in this Redis version, with the units it assumes), the idle rate subtracted in proportion
 * to a phase's length, and the command classes and key families it reports by.
 */
import Redis from 'ioredis';
import { benchClass, family, parseInfo, perTurn } from '../../bench/capacity';
import { startRedisServer } from '../../tools/redis/redis-server';

test('parseInfo reads commandstats, net bytes, main-thread CPU and memory from a real redis-server', async () => {
  const server = await startRedisServer({ args: ['--save', '', '--appendonly', 'no'] });
  const c = new Redis(server.url);
  try {
    await c.config('RESETSTAT');
    for (let i = 0; i < 7; i++) await c.xadd('cap:s', '*', 'f', 'x'.repeat(100));
    await c.hset('cap:h', 'a', '1');
    const s = parseInfo(String(await c.info('everything')));
    expect(s.calls.xadd).toBe(7);
    expect(s.calls.hset).toBe(1);
    expect(s.usec.xadd).toBeGreaterThanOrEqual(0);
    // 7 XADDs of > 100 bytes each came in; replies went out.
    expect(s.inBytes).toBeGreaterThan(700);
    expect(s.outBytes).toBeGreaterThan(0);
    expect(Number.isFinite(s.cpuMain) && s.cpuMain > 0).toBe(true);
    expect(s.usedMemory).toBeGreaterThan(100_000);
  } finally {
    c.disconnect();
    await server.stop();
  }
});

test('perTurn subtracts the idle rate scaled to the phase length, per turn', () => {
  const stats = (calls: Record<string, number>, inBytes: number, outBytes: number) => ({
    calls,
    usec: {},
    inBytes,
    outBytes,
    cpuMain: 0,
    usedMemory: 0,
  });
  const idle = { stats: stats({ xreadgroup: 10, ping: 1 }, 1000, 500), cpu: 0.01, ms: 1000, mem: 0 };
  // A 2 s phase of 4 turns: twice the idle background in it.
  const phase = { stats: stats({ xreadgroup: 28, fcall: 8, ping: 2 }, 6000, 1000), cpu: 0.06, ms: 2000, mem: 4000 };
  const t = perTurn(phase, idle, 4);
  expect(t.calls).toEqual({ xreadgroup: 2, fcall: 2 });
  expect(t.inBytes).toBe(1000);
  expect(t.outBytes).toBe(0);
  expect(t.cpuMs).toBeCloseTo(10);
  expect(t.memoryBytes).toBe(1000);
});

test('command classes and key families', () => {
  expect(['fcall', 'FCALL_RO', 'xadd', 'xread', 'xautoclaim', 'hgetall', 'xrange', 'client', 'expire', 'hmget'].map(benchClass)).toEqual([
    'fcall',
    'fcall',
    'xadd',
    'xreadgroup',
    'xreadgroup',
    'hgetall',
    'xrange',
    'ping',
    'hset',
    'hset',
  ]);
  const sid = '0b6f3c1e-1b2c-4d3e-8f40-000000000001';
  expect(
    [
      `session:${sid}`,
      'session:index:dev',
      `turn:${sid}:events`,
      `turn:${sid}:seq`,
      `turn:${sid}:t1`,
      `turn:${sid}:t1:audio`,
      'turn:deadlines',
      `memory:${sid}`,
      'acp:jobs:core:3',
      'acp:done:j1',
      'acp:alive:core:0:core4-0',
      'orb:replica:orb-0',
      'identity:seed',
    ].map(family),
  ).toEqual([
    'session:{sid}',
    'session:index:{keyId}',
    'turn:{sid}:events',
    'turn:{sid}:seq',
    'turn:{sid}:{turn}',
    'turn:{sid}:{turn}:audio',
    'turn:deadlines',
    'memory:{sid}',
    'acp:jobs:*',
    'acp:done:{jobId}',
    'acp:alive:*',
    'orb:replica:*',
    'identity:*',
  ]);
});
