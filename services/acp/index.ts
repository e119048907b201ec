/**
 * ACP/1.0 — the bus every component meets at (gateway, speech workers, cores, CALI).
 * Stable API; see docs/acp.md for the envelope, the streams and the turn event types.
 *
 *   const redis = connectVault(cfg, { connectionName: 'orb-core' });
 *   const acp = createAcp(redis, { prefix: cfg.keyPrefix });
 *   const t = await startTextTurn(acp.bus, acp.events, { session, text: 'hello' });
 *   for await (const ev of acp.events.tail(session, t.seq - 1, { signal })) { ...; if (ev.type === 'turn.end') break; }
 */
import Redis from 'ioredis';
import { AcpBus, AcpBusOptions } from './bus';
import { TurnEventStream, TurnEventStreamOptions } from './events';
import { VaultKeys, vaultKeys } from './keys';

export * from './envelope';
export * from './keys';
export * from './events';
export * from './bus';
export * from './consumer';
export * from './turn';
export * from './models';
export * from './abandon';
export * from './functions';
export * from './blocking';
export * from './sweeper';
export * from './liveness';
export { connectVault, VaultConfig, VaultConnectOptions } from './vault';

export interface Acp {
  readonly keys: VaultKeys;
  readonly bus: AcpBus;
  readonly events: TurnEventStream;
  /** Closes the blocking connections the event stream opened (not `redis` itself). */
  close(): Promise<void>;
}

export interface AcpOptions extends AcpBusOptions, TurnEventStreamOptions {
  /** VAULT_KEY_PREFIX. @default '' */
  readonly prefix?: string;
}

/** Bus + event stream over one shared client (blocking reads get their own duplicates). */
export function createAcp(redis: Redis, opts: AcpOptions = {}): Acp {
  const keys = vaultKeys(opts.prefix ?? '');
  const bus = new AcpBus(redis, keys, opts);
  const events = new TurnEventStream(redis, keys, opts);
  return { keys, bus, events, close: () => events.close() };
}
