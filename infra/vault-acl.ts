/**
 * Redis ACL users of the vault: one per component, each allowed only its key families
 * (docs/vault-keys.md) and the commands it needs. Passwords are never here: the vault's init
 * container hashes them from Secret `vault-acl` (`<user>-password`) into the ACL file.
 */

export type VaultUser = 'orb' | 'whisperx' | 'xtts' | 'core' | 'cali' | 'seed' | 'functions' | 'backup';

export const VAULT_USERS: readonly VaultUser[] = ['orb', 'whisperx', 'xtts', 'core', 'cali', 'seed', 'functions', 'backup'];

/** Key families a user may touch: read-write, and read-only. */
interface UserGrant {
  readonly readWrite: readonly string[];
  readonly readOnly: readonly string[];
  /** Command rules after `-@all`. */
  readonly commands: readonly string[];
  /** Pub/Sub channels (with the key prefix). */
  readonly channels: boolean;
}

// Data commands of the bus and the stores, minus anything that can wipe or reconfigure the server.
const SERVICE_COMMANDS = [
  '+@read', '+@write', '+@stream', '+@hash', '+@string', '+@list', '+@set', '+@sortedset', '+@keyspace',
  '+@transaction', '+@scripting', '+@pubsub', '+@connection',
  '-@dangerous', '-@admin',
  // ioredis' ready check and connection names.
  '+info', '+client|setname', '+client|getname', '+client|id',
  // The vault's server-side logic (services/acp/functions.ts), loaded by the `functions` user.
  '+fcall', '+fcall_ro',
];

const GRANTS: Record<VaultUser, UserGrant> = {
  orb: { readWrite: ['session:*', 'turn:*', 'orb:*', 'acp:*'], readOnly: ['identity:*'], commands: SERVICE_COMMANDS, channels: true },
  whisperx: { readWrite: ['turn:*', 'acp:*'], readOnly: ['identity:*'], commands: SERVICE_COMMANDS, channels: true },
  xtts: { readWrite: ['turn:*', 'acp:*'], readOnly: ['identity:*'], commands: SERVICE_COMMANDS, channels: true },
  core: { readWrite: ['turn:*', 'acp:*'], readOnly: ['identity:*'], commands: SERVICE_COMMANDS, channels: true },
  cali: { readWrite: ['turn:*', 'memory:*', 'acp:*'], readOnly: ['identity:*', 'session:*'], commands: SERVICE_COMMANDS, channels: true },
  seed: {
    readWrite: ['identity:*'], readOnly: [],
    commands: ['+@read', '+@write', '+@string', '+@hash', '+@keyspace', '+@transaction', '+@connection', '-@dangerous', '-@admin', '+info', '+client|setname'],
    channels: false,
  },
  // The bootstrap step (seed-vault's init container): loads the `orb` FUNCTION library, nothing else.
  functions: {
    readWrite: [], readOnly: [],
    commands: ['+function|load', '+function|list', '+fcall_ro', '+ping', '+info', '+hello', '+client|setname'],
    channels: false,
  },
  // Snapshots only: BGSAVE/LASTSAVE, and SYNC for `redis-cli --rdb`; no key access at all.
  backup: {
    readWrite: [], readOnly: [],
    commands: ['+bgsave', '+lastsave', '+sync', '+psync', '+replconf', '+ping', '+info', '+hello', '+client|setname'],
    channels: false,
  },
};

/** The ACL rules of `user` without its password (`user <name> on ... ` minus `#hash`). */
export function aclRules(user: VaultUser, keyPrefix = ''): string {
  const g = GRANTS[user];
  const keys = [
    ...g.readWrite.map((k) => `~${keyPrefix}${k}`),
    ...g.readOnly.map((k) => `%R~${keyPrefix}${k}`),
  ];
  const channels = g.channels ? [`&${keyPrefix}*`] : [];
  return ['resetkeys', ...keys, 'resetchannels', ...channels, '-@all', ...g.commands].join(' ');
}

/**
 * POSIX sh run by the vault's init container: reads each `<user>.rules` and the matching
 * `<user>-password` Secret key, and writes `user <name> on #<sha256> <rules>` lines, so the
 * ACL file never holds a plaintext password and no password is ever in a manifest.
 */
export const ASSEMBLE_ACL_SCRIPT = `#!/bin/sh
# usage: assemble-acl.sh RULES_DIR SECRETS_DIR OUT_FILE
set -eu
rules_dir=$1; secrets_dir=$2; out=$3
tmp="$out.tmp"
umask 077
echo "user default off resetkeys -@all" > "$tmp"
for rules in "$rules_dir"/*.rules; do
  user=$(basename "$rules" .rules)
  pw_file="$secrets_dir/$user-password"
  if [ ! -s "$pw_file" ]; then
    echo "assemble-acl: Secret key $user-password is missing or empty" >&2
    exit 1
  fi
  hash=$(tr -d '\\n' < "$pw_file" | sha256sum | cut -d' ' -f1)
  echo "user $user reset on #$hash $(cat "$rules")" >> "$tmp"
done
mv "$tmp" "$out"
echo "assemble-acl: wrote $(wc -l < "$out") users to $out"
`;
