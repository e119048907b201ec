#!/usr/bin/env bash
# Restores the in-cluster vault (StatefulSet vault, AOF on PVC data-vault-0) from a snapshot the
# vault-backup CronJob wrote to PVC vault-backup. Downtime: the vault is scaled to 0 meanwhile.
# HA vault (3 nodes under Sentinel): the snapshot goes into data-vault-0 only. Scaled back up,
# vault-0 starts first (OrderedReady) and no Sentinel survives the scale-down (their state is in
# memory), so vault-0 is the primary; vault-1.. start as its replicas and resync in full from it,
# replacing their old data.
#
#   scripts/vault-restore.sh NAMESPACE [SNAPSHOT]       SNAPSHOT: vault-<stamp>.rdb (default: newest)
#   scripts/vault-restore.sh --list NAMESPACE           list the snapshots on the backup PVC
#   scripts/vault-restore.sh --local DATA_DIR SNAPSHOT  the in-pod step on local paths (tests)
#
# A snapshot from the off-cluster bucket: copy it onto PVC vault-backup first with the backup
# image's verified download (node build/services/vault-backup/upload.js download NAME /backup/NAME).
#
# Redis 7 ignores dump.rdb when appendonly is on and no AOF exists, so the restore loads the
# snapshot with AOF off, turns AOF on (a rewrite writes the AOF from memory) and shuts down;
# the vault then starts from that AOF. The previous AOF is kept as appendonlydir.before-restore-*.
set -euo pipefail

KUBECTL=${KUBECTL:-kubectl}

# The step that runs next to the data: POSIX sh, redis image. Args: DATA_DIR SNAPSHOT_PATH
# A snapshot that does not load must leave the data as it was: started on an AOF-less data dir, the
# vault would come up empty as the primary and its replicas would resync to nothing.
RESTORE_STEP='
set -eu
data=$1; snap=$2
[ -s "$snap" ] || { echo "restore: snapshot $snap is missing or empty" >&2; exit 1; }
redis-check-rdb "$snap" >/dev/null 2>&1 || { echo "restore: $snap is not a valid RDB (redis-check-rdb); $data left untouched" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
pid=""; done=false
# A unix socket in a private dir: no port to collide with, nothing else can answer in its place.
run=$(mktemp -d "${TMPDIR:-/tmp}/vault-restore.XXXXXX")
rollback() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  [ -z "$pid" ] || wait "$pid" 2>/dev/null || true
  rm -rf "$data/appendonlydir" "$data/dump.rdb" "$data/dump.rdb.restore"
  [ ! -d "$data/appendonlydir.before-restore-$stamp" ] || mv "$data/appendonlydir.before-restore-$stamp" "$data/appendonlydir"
  [ ! -f "$data/dump.rdb.before-restore-$stamp" ] || mv "$data/dump.rdb.before-restore-$stamp" "$data/dump.rdb"
  echo "restore: failed; $data is as it was before" >&2
}
trap "[ \$done = true ] || rollback; rm -rf \"\$run\"" EXIT
[ ! -d "$data/appendonlydir" ] || mv "$data/appendonlydir" "$data/appendonlydir.before-restore-$stamp"
[ ! -f "$data/dump.rdb" ] || mv "$data/dump.rdb" "$data/dump.rdb.before-restore-$stamp"
cp "$snap" "$data/dump.rdb.restore" && mv "$data/dump.rdb.restore" "$data/dump.rdb"
redis-server --port 0 --unixsocket "$run/redis.sock" --unixsocketperm 700 --dir "$data" --appendonly no --save "" --daemonize no --logfile "" &
pid=$!
cli() { redis-cli -s "$run/redis.sock" "$@"; }
alive() { kill -0 "$pid" 2>/dev/null || { echo "restore: redis-server exited while loading $snap" >&2; exit 1; }; }
i=0; until cli ping >/dev/null 2>&1; do alive; i=$((i+1)); [ $i -lt 600 ] || { echo "restore: redis did not start" >&2; exit 1; }; sleep 0.1; done
until [ "$(cli info persistence | tr -d "\r" | grep ^loading: | cut -d: -f2)" = 0 ]; do alive; sleep 0.2; done
keys=$(cli dbsize)
cli config set appendonly yes >/dev/null
until cli info persistence | tr -d "\r" | grep -q "^aof_rewrite_in_progress:0" && cli info persistence | tr -d "\r" | grep -q "^aof_rewrite_scheduled:0" && cli info persistence | tr -d "\r" | grep -q "^aof_enabled:1"; do alive; sleep 0.2; done
[ -d "$data/appendonlydir" ] || { echo "restore: no AOF was written" >&2; exit 1; }
cli shutdown >/dev/null 2>&1 || true
wait "$pid" || true
pid=""; done=true
echo "restore: loaded $keys keys from $(basename "$snap") into $data (AOF rewritten)"
'

json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

usage() { sed -n '2,20p' "$0" >&2; exit 2; }

if [ "${1:-}" = "--local" ]; then
  [ $# -eq 3 ] || usage
  exec sh -c "$RESTORE_STEP" restore "$2" "$3"
fi

list_only=false
if [ "${1:-}" = "--list" ]; then list_only=true; shift; fi
[ $# -ge 1 ] || usage
ns=$1; snapshot=${2:-}
k() { "$KUBECTL" -n "$ns" "$@"; }

image=$(k get statefulset vault -o jsonpath='{.spec.template.spec.containers[?(@.name=="redis")].image}')
replicas=$(k get statefulset vault -o jsonpath='{.spec.replicas}')
[ -n "$replicas" ] && [ "$replicas" -ge 1 ] || { echo "statefulset vault: no replica count" >&2; exit 1; }
pod=vault-restore
# A pod that passes the namespace's restricted Pod Security profile, mounting both volumes.
run_pod() { # $1: mount the vault data too (true/false); $2...: command
  local with_data=$1; shift
  # JSON-escaped: the restore step is a multi-line script with quotes; raw, kubectl would read the
  # body as YAML and fold its lines into one.
  local cmd='' a
  for a in "$@"; do cmd+="$(json_str "$a"),"; done
  cmd="[${cmd%,}]"
  local data_mount='' data_vol=''
  if [ "$with_data" = true ]; then
    data_mount='{"name":"data","mountPath":"/data"},'
    data_vol='{"name":"data","persistentVolumeClaim":{"claimName":"data-vault-0"}},'
  fi
  k delete pod "$pod" --ignore-not-found --wait=true >/dev/null
  k apply -f - >/dev/null <<JSON
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$pod","labels":{"app":"$pod","app.kubernetes.io/name":"$pod","app.kubernetes.io/part-of":"ucm4-core"}},
 "spec":{"restartPolicy":"Never","automountServiceAccountToken":false,
  "securityContext":{"runAsNonRoot":true,"runAsUser":10001,"runAsGroup":10001,"fsGroup":10001,"seccompProfile":{"type":"RuntimeDefault"}},
  "containers":[{"name":"restore","image":"$image","command":$cmd,
    "securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}},
    "resources":{"requests":{"cpu":"100m","memory":"256Mi","ephemeral-storage":"64Mi"},"limits":{"cpu":"1","memory":"8Gi","ephemeral-storage":"256Mi"}},
    "volumeMounts":[$data_mount{"name":"backup","mountPath":"/backup"},{"name":"tmp","mountPath":"/tmp"}]}],
  "volumes":[$data_vol{"name":"backup","persistentVolumeClaim":{"claimName":"vault-backup"}},{"name":"tmp","emptyDir":{}}]}}
JSON
  k wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$pod" --timeout=1800s || { k logs "$pod" >&2 || true; exit 1; }
  k logs "$pod"
  k delete pod "$pod" --wait=false >/dev/null
}

if $list_only; then
  run_pod false sh -c 'ls -1 /backup/vault-*.rdb | sort -r'
  exit 0
fi

if [ -z "$snapshot" ]; then
  snapshot=$(run_pod false sh -c 'ls -1 /backup/vault-*.rdb | sort -r | head -n 1 | xargs basename')
  [ -n "$snapshot" ] || { echo "no snapshot on PVC vault-backup" >&2; exit 1; }
fi
echo "restoring $snapshot into namespace $ns (image $image)"

# No backup may run while the data is swapped; the vault must be down so Redis does not overwrite it.
k patch cronjob vault-backup -p '{"spec":{"suspend":true}}' >/dev/null
trap 'k patch cronjob vault-backup -p "{\"spec\":{\"suspend\":false}}" >/dev/null || true' EXIT
k scale statefulset vault --replicas=0
for i in $(seq 0 $((replicas - 1))); do k wait --for=delete "pod/vault-$i" --timeout=300s || true; done
# A wait above may have timed out (a pod stuck terminating): never swap the data of a running vault.
left=$(k get pods -l app=vault -o name)
[ -z "$left" ] || { echo "vault pod(s) still present after scale-down: $(echo $left); data-vault-0 left untouched" >&2; exit 1; }

run_pod true sh -c "$RESTORE_STEP" restore /data "/backup/$snapshot"

# vault-0 first (the restored primary); with replicas > 1 the others join as replicas and resync.
k scale statefulset vault --replicas="$replicas"
k rollout status statefulset vault --timeout=600s
echo "vault restored from $snapshot into vault-0 ($replicas node(s)); the previous AOF is kept in data-vault-0:/data/appendonlydir.before-restore-*"
