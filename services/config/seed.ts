/** Env of the seed Job (loads the identity document into identity:*). */
import { str } from './env';

export const SEED_ENV = {
  identityFile: str('IDENTITY_FILE', {
    doc: 'Path of the identity JSON document (ConfigMap seed-vault-identity)',
    default: '/etc/seed-vault/identity.json',
  }),
} as const;
