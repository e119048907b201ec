#!/usr/bin/env bash
# Creates the Secrets the manifests reference, with random values, for dev/kind clusters:
#   vault-acl     <user>-password for each vault ACL user (orb whisperx xtts core cali seed functions
#                 backup, and replication sentinel for a replicated vault)
#   orb-api-keys  keys = "dev:<random key>" (ORB_API_KEYS format id:key)
#   orb-smoke     api-key = the same key, for the orb-smoke Job
# Existing Secrets are kept (the running vault's ACL was built from them); --rotate replaces them
# (then restart the vault and every client: kubectl -n NS rollout restart statefulset/vault deploy).
#
#   scripts/dev-secrets.sh [--rotate] [NAMESPACE]     (default namespace: ucm4-dev)
#   scripts/dev-secrets.sh --files DIR [NAMESPACE]    writes DIR/<secret>/<key> files instead of
#                                                     calling kubectl (the pod runner, tools/pods)
# Values never reach stdout or dist/; read one with
#   kubectl -n NS get secret orb-smoke -o jsonpath='{.data.api-key}' | base64 -d
set -euo pipefail

KUBECTL=${KUBECTL:-kubectl}
rotate=false
files=""
if [ "${1:-}" = "--rotate" ]; then rotate=true; shift; fi
if [ "${1:-}" = "--files" ]; then files=$2; shift 2; fi
ns=${1:-ucm4-dev}
USERS="orb whisperx xtts core cali seed functions backup replication sentinel"

random() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
k() { "$KUBECTL" -n "$ns" "$@"; }

exists() {
  if [ -n "$files" ]; then [ -d "$files/$1" ]; else k get secret "$1" >/dev/null 2>&1; fi
}

# Applies a generic Secret from NAME=VALUE pairs without putting values on a command line.
apply_secret() {
  local name=$1; shift
  if exists "$name" && ! $rotate; then echo "secret/$name exists (kept; --rotate to replace)"; return; fi
  local verb=created; exists "$name" && verb=replaced
  if [ -n "$files" ]; then
    local out="$files/$name"; rm -rf "$out"; mkdir -p "$out"; chmod 700 "$files" "$out"
    for pair in "$@"; do (umask 077; printf '%s' "${pair#*=}" > "$out/${pair%%=*}"); done
    echo "secret/$name $verb (files in $out)"
    return
  fi
  local dir; dir=$(mktemp -d); trap 'rm -rf "$dir"' RETURN
  local args=()
  for pair in "$@"; do
    printf '%s' "${pair#*=}" > "$dir/${pair%%=*}"
    args+=("--from-file=${pair%%=*}=$dir/${pair%%=*}")
  done
  k create secret generic "$name" "${args[@]}" --dry-run=client -o yaml | k apply -f - >/dev/null
  echo "secret/$name $verb"
}

[ -n "$files" ] || "$KUBECTL" get namespace "$ns" >/dev/null 2>&1 || { echo "namespace $ns does not exist: apply dist/<env>/00-namespace.k8s.yaml first" >&2; exit 1; }

pairs=()
for u in $USERS; do pairs+=("$u-password=$(random)"); done
apply_secret vault-acl "${pairs[@]}"

# The smoke test's key must be one of the gateway's keys: the two are created together.
if exists orb-api-keys && ! $rotate; then
  echo "secret/orb-api-keys exists (kept; --rotate to replace)"
  exists orb-smoke || echo "warning: orb-smoke is missing but orb-api-keys exists; run with --rotate to pair them" >&2
else
  key=$(random)
  apply_secret orb-api-keys "keys=dev:$key"
  rotate=true
  apply_secret orb-smoke "api-key=$key"
fi
