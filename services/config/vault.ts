/** How every service reaches the vault (Redis). Each service connects as its own ACL user. */
import { PORTS } from '../contract';
import { bool, int, str, list, type EnvVar } from './env';

/** host:port list; a bad entry fails at start (and at synth), not at the first failover. */
function hostPorts(name: string, o: { doc: string; default: string[] }): EnvVar<string[]> {
  const base = list(name, o);
  return {
    ...base,
    parse: (raw) => {
      const entries = base.parse(raw);
      for (const e of entries) {
        const m = /^([^:\s]+):(\d+)$/.exec(e);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`entry ${JSON.stringify(e)} must be host:port`);
      }
      return entries;
    },
  };
}

export const VAULT_ENV = {
  url: str('REDIS_URL', { doc: 'Full redis:// URL; when set it wins over host/port (local dev and tests)', default: '' }),
  host: str('REDIS_HOST', { doc: 'Vault host (the vault Service, or an external Redis)', default: '127.0.0.1' }),
  port: int('REDIS_PORT', { doc: 'Vault port', default: PORTS.vault, min: 1, max: 65535 }),
  username: str('REDIS_USERNAME', { doc: 'Redis ACL user of this service', default: 'default' }),
  password: str('REDIS_PASSWORD', { doc: 'Password of the ACL user (from a Secret)', default: '', secret: true }),
  tls: bool('REDIS_TLS', { doc: 'Connect with TLS', default: false }),
  sentinels: hostPorts('REDIS_SENTINELS', {
    doc: `Comma-separated host:port of Redis Sentinels (the in-cluster HA vault: vault-N.vault:${PORTS.sentinel}); set, the client asks them for the primary and follows failovers; empty means a direct connection`,
    default: [],
  }),
  sentinelMaster: str('REDIS_SENTINEL_MASTER', { doc: 'Sentinel master set name (the in-cluster vault: vault)', default: 'mymaster' }),
  keyPrefix: str('VAULT_KEY_PREFIX', { doc: 'Prefix of every vault key (isolates tenants and test runs)', default: '' }),
} as const;
