/**
 * Connections to the vault (Redis). Every service builds its clients here so that ACL user,
 * password, TLS, Sentinel and key prefix are applied the same way everywhere.
 */
import { PORTS } from '../contract';
import Redis, { RedisOptions } from 'ioredis';
import { EnvValues } from '../config/env';
import { VAULT_ENV } from '../config/vault';

export type VaultConfig = EnvValues<typeof VAULT_ENV>;

export interface VaultConnectOptions {
  /** CLIENT SETNAME, visible in `CLIENT LIST` (e.g. `orb-core:orb-core-7d9f-abcde`). */
  readonly connectionName?: string;
  /** Extra ioredis options (e.g. `maxRetriesPerRequest: null` for blocking readers). */
  readonly options?: RedisOptions;
}

/** A client for the vault. Keys are NOT auto-prefixed: callers build keys with `VaultKeys`. */
export function connectVault(cfg: VaultConfig, opts: VaultConnectOptions = {}): Redis {
  const base: RedisOptions = {
    connectionName: opts.connectionName,
    enableAutoPipelining: true,
    ...(cfg.username && cfg.username !== 'default' ? { username: cfg.username } : {}),
    ...(cfg.password ? { password: cfg.password } : {}),
    ...(cfg.tls ? { tls: {} } : {}),
    ...opts.options,
  };
  if (cfg.url) return new Redis(cfg.url, base);
  if (cfg.sentinels.length) {
    return reconnectAfterStrayEnd(
      new Redis({
        ...base,
        sentinels: cfg.sentinels.map((hp) => {
          const [host, port] = hp.split(':');
          return { host, port: Number(port || PORTS.sentinel) };
        }),
        name: cfg.sentinelMaster,
        role: 'master',
        // The Sentinels know every service user, allowed only to discover the primary (infra/vault-sentinel.ts).
        sentinelUsername: base.username,
        sentinelPassword: base.password,
        ...(cfg.tls ? { enableTLSForSentinelMode: true } : {}),
        // Subscribe to +switch-master: reconnect on the Sentinels' word, not only when the old primary's socket dies.
        failoverDetector: true,
        // A demoted primary answers writes with READONLY: reconnect (asking the Sentinels again) and resend.
        reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
        ...opts.options,
      }),
    );
  }
  return new Redis({ ...base, host: cfg.host, port: cfg.port });
}

/**
 * ioredis 5 keeps a Sentinel client's failover detector of its previous connection subscribed
 * until the next connection is made. When the primary dies (its socket closes, the client
 * reconnects) and the Sentinels' +switch-master lands while a reconnect is still asking them for
 * the primary, that stale detector aborts the lookup: connect() fails with "Connection is closed."
 * and the client goes to status `end` for good (every later command: "Connection is closed.").
 * The failover drill saw a gateway stop serving turns after SIGKILL of the primary this way.
 * Here a client that ends without its owner closing it (disconnect/quit) connects again; so do
 * its duplicates (the blocking readers).
 */
export function reconnectAfterStrayEnd(client: Redis): Redis {
  let closedByOwner = false;
  const disconnect = client.disconnect.bind(client);
  client.disconnect = (reconnect = false) => {
    if (!reconnect) closedByOwner = true;
    disconnect(reconnect);
  };
  const quit = client.quit.bind(client);
  client.quit = ((...args: Parameters<Redis['quit']>) => {
    closedByOwner = true;
    return quit(...args);
  }) as Redis['quit'];
  const duplicate = client.duplicate.bind(client);
  client.duplicate = (...args: Parameters<Redis['duplicate']>) => reconnectAfterStrayEnd(duplicate(...args));
  client.on('end', () => {
    if (closedByOwner) return;
    setTimeout(() => {
      if (!closedByOwner && client.status === 'end') client.connect().catch(() => undefined);
    }, 50).unref();
  });
  return client;
}
