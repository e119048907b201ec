#!/usr/bin/env bash
# npm run e2e:kind — the dev environment on a throwaway kind cluster:
#   create cluster -> build + load images -> dev Secrets -> apply dist/dev -> wait for rollouts
#   -> run the orb-smoke Job -> print its logs -> delete the cluster.
# Where docker (with a running engine) or kind is missing it prints "SKIPPED: <reason>" and exits 0:
# a skip is reported as a skip, never as a pass.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${KIND_CLUSTER:-orb-e2e}
DIST=${DIST_DIR:-dist/dev}
KEEP=${KEEP_CLUSTER:-0}           # 1 keeps the cluster for debugging
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-600s}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-300s}

log() { printf '\n== %s\n' "$*"; }
skip() { echo "SKIPPED: $*"; exit 0; }

# ---- preconditions: report a skip with its reason ----------------------------------------------
command -v docker >/dev/null 2>&1 || skip "docker is not installed"
docker info >/dev/null 2>&1 || skip "docker is installed but no engine answers (docker info failed)"
command -v kind >/dev/null 2>&1 || skip "kind is not installed (https://kind.sigs.k8s.io)"
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed"
[ -d "$DIST" ] || { echo "FAIL: $DIST does not exist: run 'npm run synth' first" >&2; exit 1; }

# dist/dev: numbered files (00-namespace … 30-orb-core) applied in name order, which is the
# dependency order cdk8s wrote them in; test/test-pods.k8s.yaml holds the orb-smoke Job, applied
# only after the stack is up.
# Manifests only: each folder's kustomization.yaml is kustomize's input, not an object to apply.
mapfile -t ALL_FILES < <(find "$DIST" -name '*.k8s.yaml' | sort)
SMOKE_FILES=(); STACK_FILES=(); NS_FILES=()
for f in "${ALL_FILES[@]}"; do
  case "$(basename "$f")" in
    *test-pods*) SMOKE_FILES+=("$f") ;;
    *) if grep -q '^kind: Namespace$' "$f"; then NS_FILES+=("$f"); else STACK_FILES+=("$f"); fi ;;
  esac
done
[ ${#SMOKE_FILES[@]} -gt 0 ] || { echo "FAIL: no *test-pods* manifest (the orb-smoke Job) in $DIST" >&2; exit 1; }

# Namespace of the workloads (the first Namespace object, else the default one).
NS=""
[ ${#NS_FILES[@]} -gt 0 ] && NS=$(awk '/^  name:/{print $2; exit}' "${NS_FILES[0]}")
NS=${NS:-$(awk '/^  namespace:/{print $2; exit}' "${STACK_FILES[@]}")}
NS=${NS:-default}

cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ]; then
    echo "KEEP_CLUSTER=1: cluster '$CLUSTER' left running (kind delete cluster --name $CLUSTER)"
  else
    log "delete cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit $rc
}

# ---- cluster -----------------------------------------------------------------------------
log "create kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --wait 120s
trap cleanup EXIT
kubectl config use-context "kind-$CLUSTER" >/dev/null

# ---- images: every image dist/dev references, built from the Dockerfile's CPU target --------
# dev runs the speech workers on CPU, so the GPU target is not needed here.
mapfile -t IMAGES < <(grep -h -E '^\s+image: ' "${STACK_FILES[@]}" "${SMOKE_FILES[@]}" | awk '{print $2}' | tr -d '"' | sort -u)
[ ${#IMAGES[@]} -gt 0 ] || { echo "FAIL: no image references in $DIST" >&2; exit 1; }
# Images under OUR_IMAGES (the repository of charts/config's image settings) are built here;
# any other (redis) is pulled and side-loaded so the cluster needs no registry access.
OUR_IMAGES=${OUR_IMAGES:-ucm4/}
OURS=()
for img in "${IMAGES[@]}"; do
  case "$img" in
    "$OUR_IMAGES"*) OURS+=("$img") ;;
    *) docker pull -q "$img" >/dev/null; kind load docker-image "$img" --name "$CLUSTER" ;;
  esac
done
[ ${#OURS[@]} -gt 0 ] || { echo "FAIL: no image under '$OUR_IMAGES' in $DIST (set OUR_IMAGES)" >&2; exit 1; }
log "docker build --target cpu -> ${OURS[*]}"
first=${OURS[0]}
docker build --target cpu -t "$first" .
for img in "${OURS[@]:1}"; do docker tag "$first" "$img"; done
for img in "${OURS[@]}"; do kind load docker-image "$img" --name "$CLUSTER"; done

# ---- namespace, dev Secrets, the stack -------------------------------------------------------
if [ ${#NS_FILES[@]} -gt 0 ]; then
  log "apply namespace(s)"
  for f in "${NS_FILES[@]}"; do kubectl apply -f "$f"; done
fi
kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"

log "dev Secrets (scripts/dev-secrets.sh: vault-acl, orb-api-keys, orb-smoke)"
[ -f scripts/dev-secrets.sh ] || { echo "FAIL: scripts/dev-secrets.sh is missing" >&2; exit 1; }
bash scripts/dev-secrets.sh "$NS"

log "apply $DIST (without the smoke Job)"
for f in "${STACK_FILES[@]}"; do kubectl apply -f "$f"; done

log "wait for rollouts in namespace $NS"
# The vault first (everyone needs it), then the seed Job that loads the identity into it.
if kubectl -n "$NS" get statefulset vault >/dev/null 2>&1; then
  kubectl -n "$NS" rollout status statefulset/vault --timeout="$ROLLOUT_TIMEOUT"
fi
kubectl -n "$NS" wait --for=condition=complete job/seed-vault --timeout="$ROLLOUT_TIMEOUT"
for d in $(kubectl -n "$NS" get deployments -o name); do
  kubectl -n "$NS" rollout status "$d" --timeout="$ROLLOUT_TIMEOUT"
done
for s in $(kubectl -n "$NS" get statefulsets -o name); do
  kubectl -n "$NS" rollout status "$s" --timeout="$ROLLOUT_TIMEOUT"
done

# ---- the smoke Job -----------------------------------------------------------------------
log "apply ${SMOKE_FILES[*]} and wait for job/orb-smoke"
kubectl -n "$NS" delete job orb-smoke --ignore-not-found
for f in "${SMOKE_FILES[@]}"; do kubectl apply -f "$f"; done
set +e
kubectl -n "$NS" wait --for=condition=complete job/orb-smoke --timeout="$SMOKE_TIMEOUT" &
ok_pid=$!
kubectl -n "$NS" wait --for=condition=failed job/orb-smoke --timeout="$SMOKE_TIMEOUT" &
fail_pid=$!
# Whichever condition comes first decides; the other wait is stopped.
wait -n "$ok_pid" "$fail_pid"
succeeded=$(kubectl -n "$NS" get job orb-smoke -o jsonpath='{.status.succeeded}')
kill "$ok_pid" "$fail_pid" 2>/dev/null
set -e

log "kubectl logs job/orb-smoke"
kubectl -n "$NS" logs job/orb-smoke --all-containers || true

if [ "${succeeded:-0}" -ge 1 ]; then
  echo "PASS: orb-smoke succeeded on kind cluster $CLUSTER"
else
  log "diagnostics"
  kubectl -n "$NS" get pods -o wide || true
  kubectl -n "$NS" describe job orb-smoke || true
  echo "FAIL: orb-smoke did not succeed" >&2
  exit 1
fi
