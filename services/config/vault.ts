/** How every service reaches the vault (Redis). Each service connects as its own ACL user. */
import { bool, int, str, list } from './env';

export const VAULT_ENV = {
  url: str('REDIS_URL', { doc: 'Full redis:// URL; when set it wins over host/port (local dev and tests)', default: '' }),
  host: str('REDIS_HOST', { doc: 'Vault host (the vault Service, or an external Redis)', default: '127.0.0.1' }),
  port: int('REDIS_PORT', { doc: 'Vault port', default: 6379, min: 1, max: 65535 }),
  username: str('REDIS_USERNAME', { doc: 'Redis ACL user of this service', default: 'default' }),
  password: str('REDIS_PASSWORD', { doc: 'Password of the ACL user (from a Secret)', default: '', secret: true }),
  tls: bool('REDIS_TLS', { doc: 'Connect with TLS', default: false }),
  sentinels: list('REDIS_SENTINELS', { doc: 'Comma-separated host:port of Redis Sentinels; empty means direct connection', default: [] }),
  sentinelMaster: str('REDIS_SENTINEL_MASTER', { doc: 'Sentinel master set name', default: 'mymaster' }),
  keyPrefix: str('VAULT_KEY_PREFIX', { doc: 'Prefix of every vault key (isolates tenants and test runs)', default: '' }),
} as const;
