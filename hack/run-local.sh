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
#   5. a loopback GitHub (examples/loopback_github.rs, a dev tool, never part of `healer`) that
#      answers as GitHub's OpenAPI description documents and checks every request against it: it
#      serves the repository's commits, the failing job and its log (the failing step's real
#      output, in GitHub's log format), and the failing branch's pull request; the controller
#      reads the failure from it with a GitHub App identity, delivers the fix as a draft pull
#      request into the failing branch, and reports with a check run and one pull request comment;
#   6. what people then see: kubectl get / describe, the attempt, the kept patch, and what GitHub
#      received (every request, the pull request, the check run, the comment);
#   7. the dashboard (`healer dashboard`) on a free loopback port, left running: its URL is printed.
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

BRANCH=greet
git -C "$SRC" branch "$BRANCH"
git -C "$REMOTES/Codertocat/Hello-World.git" fetch -q "$SRC" "$BRANCH:$BRANCH"

say "the loopback GitHub"
cargo build --locked -q --example loopback_github
LOOPBACK=$(dirname "$HEALER")/examples/loopback_github
# The failing job's log: what the failing step printed, in GitHub's log format (the loopback adds
# the timestamps).
{
  echo "##[group]Run yarn run format-check"
  echo "yarn run format-check"
  echo "##[endgroup]"
  echo '$ prettier --check .'
  (cd "$SRC" && prettier --check . 2>&1 || true)
  echo "##[error]Process completed with exit code 1."
} > "$WORK/job.log"
# The GitHub App's key: the controller reads it from a Secret; the loopback verifies its JWTs.
openssl genrsa -traditional -out "$WORK/app.pem" 2048 2>/dev/null
openssl rsa -pubout -in "$WORK/app.pem" -out "$WORK/app.pub" 2>/dev/null
RUN_ID=2202229078
JOB_ID=289782451
cat > "$WORK/github-seed.yaml" <<YAML
auth:
  app: {id: 4242, slug: ci-healer, publicKeyPem: ""}
appPublicKeyFile: $WORK/app.pub
repositories:
  - fullName: Codertocat/Hello-World
    importGit: ["$SRC", "$SHA"]
    branches: {main: HEAD, "$BRANCH": HEAD}
    installationId: 77
    pulls:
      - {number: 7, title: "Add greet", headRef: "$BRANCH", headSha: "$SHA", baseRef: main, user: Codertocat}
    runs:
      - {id: $RUN_ID, name: CodeQL, path: .github/workflows/codeql.yml, headSha: "$SHA", headBranch: "$BRANCH"}
    jobs:
      - id: $JOB_ID
        runId: $RUN_ID
        name: linters
        workflowName: CodeQL
        headSha: "$SHA"
        headBranch: "$BRANCH"
        steps:
          - {name: Set up job, conclusion: success}
          - {name: Run yarn run format-check, conclusion: failure}
        logFile: $WORK/job.log
YAML
rm -f "$WORK/github-url"
"$LOOPBACK" --seed "$WORK/github-seed.yaml" --url-file "$WORK/github-url" > "$WORK/github.log" 2>&1 &
GITHUB=$!
trap 'kill $GITHUB 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/github-url" ] && break; sleep 0.1; done
GH_URL=$(cat "$WORK/github-url")
echo "loopback GitHub: $GH_URL (what it received: $GH_URL/_loopback/requests, $GH_URL/_loopback/state)"

say "controller and host runner"
cat > "$WORK/config.yaml" <<YAML
healerImage: ghcr.io/ci-healer/healer:local
github:
  apiUrl: $GH_URL
  app: {appId: 4242, privateKeySecret: {name: ci-healer-github-app, key: private-key.pem}}
  secretNamespace: $NS
allowedRepositories:
  $NS: [Codertocat/Hello-World]
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
kubectl create secret generic ci-healer-github-app -n "$NS" --from-file=private-key.pem="$WORK/app.pem" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
RUST_LOG=info,kube=warn "$HEALER" controller --namespace "$NS" --metrics-addr 127.0.0.1:0 --config "$WORK/config.yaml" \
  > "$WORK/controller.log" 2>&1 &
CTRL=$!
RUST_LOG=info,kube=warn "$HEALER" host-runner --namespace "$NS" --node-name "host-$NS" --work-dir "$WORK/pods" \
  > "$WORK/host-runner.log" 2>&1 &
RUNNER=$!
trap 'kill $CTRL $RUNNER $GITHUB 2>/dev/null || true' EXIT
echo "logs: $WORK/controller.log, $WORK/host-runner.log"

say "the HealingRun the Sensor made from the real delivery, pointed at the local commit (mode pull-request)"
RUN=$(sed -n 's/^  name: //p' config/samples/healingrun-from-workflow-job.yaml | head -1)
kubectl delete healingrun "$RUN" -n "$NS" --ignore-not-found >/dev/null
sed -e "s/^  namespace: .*/  namespace: $NS/" -e "s/^    headSha: .*/    headSha: $SHA/" \
  -e "s|^    branch: .*|    branch: $BRANCH|" -e "s/^    mode: .*/    mode: pull-request/" \
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
  say "the kept patch (ConfigMap $PATCH_CM; the controller delivered it as the draft pull request below)"
  kubectl get configmap "$PATCH_CM" -n "$NS" -o jsonpath='{.data.patch\.diff}'
fi
# The draft pull request and the report follow the Fixed status (the next reconcile).
for _ in $(seq 1 60); do
  REPORTED=$(kubectl get healingrun "$RUN" -n "$NS" -o jsonpath='{.status.report.reported}' 2>/dev/null || true)
  case "$REPORTED" in Fixed*|Escalated|Aborted) break ;; esac
  sleep 1
done
say "what the loopback GitHub received (each request checked against GitHub's OpenAPI description)"
python3 - "$GH_URL" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
get = lambda what: json.load(urllib.request.urlopen(f"{url}/_loopback/{what}"))
for r in get("requests"):
    print(f"  {r['seq']:>3} {r['method']:<6} {r['status']} {r['operation']:<44} {r['path']}")
print(f"\n{len(get('violations'))} request(s) the OpenAPI description does not allow")
for repo in get("state"):
    for p in repo["pulls"]:
        if p["headRef"].startswith("ci-healer/"):
            kind = "draft" if p["draft"] else "ready"
            print(f"\n--- pull request #{p['number']} ({kind}, {p['headRef']} -> {p['baseRef']}, labels {p['labels']})")
            print(f"title: {p['title']}\n\n{p['body']}")
    for c in repo["checkRuns"]:
        if c["name"] == "ci-healer":
            print(f"\n--- check run {c['id']} '{c['name']}' on {c['headSha'][:7]}: {c['status']}/{c['conclusion']}, updated {c['updates']} time(s)")
            print(f"{c['title']}\n\n{c['summary']}")
    for m in repo["comments"]:
        print(f"\n--- comment {m['id']} on #{m['issueNumber']} by {m['user']}, edited {m['edits']} time(s)")
        print(m["body"])
PY
VIOLATIONS=$(curl -fsS "$GH_URL/_loopback/violations")
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
PR=$(kubectl get healingrun "$RUN" -n "$NS" -o jsonpath='{.status.pullRequest.number}')
[ -n "$PR" ] || { echo "no pull request; see kubectl describe above and $WORK/controller.log" >&2; exit 1; }
[ "$VIOLATIONS" = "[]" ] || { echo "requests GitHub would refuse: $VIOLATIONS" >&2; exit 1; }
echo "draft pull request #$PR opened into $BRANCH; check run and comment above"
