#!/usr/bin/env bash
# The main job, end to end on this machine (`make run-local`):
#
#   1. a local control plane (kube-apiserver, etcd, kube-controller-manager, kube-scheduler) with the
#      CRDs (the Makefile target does this);
#   2. a local copy of the failing repository: the real `workflow_job` delivery
#      (tests/fixtures/payloads/workflow_job-failure.json) reports job `linters`, step
#      `Run yarn run format-check` failing on Codertocat/Hello-World; GitHub is out of reach here, so a
#      local bare repository with the same kind of failure (prettier --check) stands in for it;
#   3. the controller and the host runner (the kubelet stand-in that runs the pods the real Job
#      controller creates and the real scheduler binds to its Node, as local processes, and serves
#      their logs);
#   4. the sample HealingRun the Argo Events Sensor makes from that delivery
#      (config/samples/healingrun-from-workflow-job.yaml), pointed at the local copy's commit;
#   5. what people then see: kubectl get / describe, the attempt, the kept patch;
#   6. the dashboard (`healer dashboard`) on a free loopback port, left running: its URL is printed.
#
# The control plane and the dashboard keep running afterwards (`make control-plane-stop` stops the
# control plane; the printed `kill` command stops the dashboard, and the next run-local replaces it).
set -euo pipefail
cd "$(dirname "$0")/.."
CP=hack/control-plane.sh
BIN_DIR=$($CP bin-dir)
export KUBECONFIG=${KUBECONFIG:-$($CP env | sed -n 's/^export KUBECONFIG=//p')}
kubectl() { "$BIN_DIR/kubectl" "$@"; }
NS=${DEMO_NAMESPACE:-ci-healer-demo}
WORK=$(mktemp -d -t ci-healer-demo-XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building healer"
cargo build --locked -q --bin healer
HEALER=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/healer

say "installing prettier (the failing step's tool) from the npm registry"
TOOLS=$(hack/install-test-tools.sh)
export PATH="$TOOLS:$PATH"

say "a local copy of Codertocat/Hello-World with an unformatted file"
SRC="$WORK/src"
REMOTES="$WORK/remotes"
mkdir -p "$SRC/src" "$REMOTES/Codertocat"
cat > "$SRC/package.json" <<'JSON'
{
  "name": "hello-world",
  "private": true,
  "scripts": {
    "format-check": "prettier --check ."
  }
}
JSON
printf 'export function greet(name:string){return   "Hello, "+name}\n' > "$SRC/src/greet.ts"
printf 'export const answer = 42;\n' > "$SRC/src/answer.ts"
git -C "$SRC" init -q -b main
git -C "$SRC" -c user.name=demo -c user.email=demo@example.com add -A
git -C "$SRC" -c user.name=demo -c user.email=demo@example.com commit -q -m "add greet"
git clone -q --bare "$SRC" "$REMOTES/Codertocat/Hello-World.git"
SHA=$(git -C "$SRC" rev-parse HEAD)
echo "head SHA $SHA; prettier --check says:"
(cd "$SRC" && prettier --check . 2>&1 || true) | sed 's/^/    /'

say "controller and host runner"
cat > "$WORK/config.yaml" <<YAML
healerImage: ghcr.io/ci-healer/healer:local
profiles:
  general: {image: docker.io/library/buildpack-deps:bookworm, settings: {gitBaseUrl: "file://$REMOTES"}}
  frontend: {image: docker.io/library/node:22, settings: {gitBaseUrl: "file://$REMOTES"}}
  rust: {image: docker.io/library/rust:1.95, settings: {gitBaseUrl: "file://$REMOTES"}}
  infrastructure: {image: docker.io/alpine/helm:3, settings: {gitBaseUrl: "file://$REMOTES"}}
YAML
# Attempt pods must pass Pod Security "restricted" here, and run on the host runner's Node.
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
  annotations:
    scheduler.alpha.kubernetes.io/node-selector: kubernetes.io/hostname=host-$NS
YAML
# What an earlier demo left: deleting the runs is enough, the garbage collector removes their
# attempts, Jobs, pods and ConfigMaps through ownerReferences.
kubectl delete healingruns -n "$NS" --all --wait=false >/dev/null 2>&1 || true
RUST_LOG=info,kube=warn "$HEALER" controller --namespace "$NS" --metrics-addr 127.0.0.1:0 --config "$WORK/config.yaml" \
  > "$WORK/controller.log" 2>&1 &
CTRL=$!
RUST_LOG=info,kube=warn "$HEALER" host-runner --namespace "$NS" --node-name "host-$NS" --work-dir "$WORK/pods" \
  > "$WORK/host-runner.log" 2>&1 &
RUNNER=$!
trap 'kill $CTRL $RUNNER 2>/dev/null || true' EXIT
echo "logs: $WORK/controller.log, $WORK/host-runner.log"

say "the HealingRun the Sensor made from the real delivery, pointed at the local commit"
RUN=$(sed -n 's/^  name: //p' config/samples/healingrun-from-workflow-job.yaml | head -1)
kubectl delete healingrun "$RUN" -n "$NS" --ignore-not-found >/dev/null
sed -e "s/^  namespace: .*/  namespace: $NS/" -e "s/^    headSha: .*/    headSha: $SHA/" \
  config/samples/healingrun-from-workflow-job.yaml | kubectl create -f -

say "waiting for the run to finish"
for _ in $(seq 1 300); do
  PHASE=$(kubectl get healingrun "$RUN" -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$PHASE" in Fixed|Escalated|Aborted) break ;; esac
  sleep 1
done

say "kubectl get healingruns -o wide"
kubectl get healingruns -n "$NS" -o wide
say "kubectl get healingattempts"
kubectl get healingattempts -n "$NS"
say "kubectl describe healingrun $RUN"
kubectl describe healingrun "$RUN" -n "$NS"
PATCH_CM=$(kubectl get healingrun "$RUN" -n "$NS" -o jsonpath='{.status.patch.configMap}')
if [ -n "$PATCH_CM" ]; then
  say "the kept patch (ConfigMap $PATCH_CM; nothing was pushed: mode propose)"
  kubectl get configmap "$PATCH_CM" -n "$NS" -o jsonpath='{.data.patch\.diff}'
fi
POD=$(kubectl get pods -n "$NS" -l "cihealer.dev/run=$RUN" -o jsonpath='{.items[0].metadata.name}')
say "kubectl logs $POD -c validate (served by the host runner's kubelet endpoint)"
kubectl logs "$POD" -n "$NS" -c validate | head -40

say "the dashboard"
STATE_DIR=$(dirname "$KUBECONFIG")
DASH_PID_FILE="$STATE_DIR/dashboard.pid"
# Replace the dashboard an earlier run-local left, if that process is still ours.
if [ -f "$DASH_PID_FILE" ]; then
  OLD=$(cat "$DASH_PID_FILE")
  if [ -n "$OLD" ] && tr '\0' ' ' < "/proc/$OLD/cmdline" 2>/dev/null | grep -q "healer dashboard"; then kill "$OLD" || true; fi
fi
DASH_LOG="$STATE_DIR/dashboard.log"
# Its own session, so the EXIT trap that stops the controller and the host runner leaves it up.
RUST_LOG=info,kube=warn setsid "$HEALER" dashboard --namespace "$NS" --addr "${DASHBOARD_ADDR:-127.0.0.1:0}" \
  > "$DASH_LOG" 2>&1 < /dev/null &
echo $! > "$DASH_PID_FILE"
URL=
for _ in $(seq 1 100); do
  URL=$(sed -n 's/.*url=\(http[^ ]*\).*/\1/p' "$DASH_LOG" | head -1)
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { echo "the dashboard did not start; see $DASH_LOG" >&2; exit 1; }
echo "dashboard: ${URL}runs/$NS/$RUN   (all runs: $URL; stop it: kill $(cat "$DASH_PID_FILE"))"

[ "$PHASE" = "Fixed" ] || { echo "run ended $PHASE; see $WORK/*.log" >&2; exit 1; }
