#!/usr/bin/env bash
# The Argo Events Sensor evaluator (hack/argo-eval): a Go program built from Argo Events' own packages,
# which runs the manifests in config/argo-events/ on a GitHub delivery (see hack/argo-eval/main.go).
#
#   hack/argo-eval.sh build     build it unless cached; print the binary's path
#   hack/argo-eval.sh path      print the binary's path (built or not)
#   hack/argo-eval.sh version   print the Argo Events version it is built from
#
# Built with the machine's Go from the Go module proxy (versions pinned by hack/argo-eval/go.mod and
# go.sum) and cached in $CIHEALER_CACHE/bin (default ~/.cache/ci-healer/bin) as
# argo-eval-<argo events version>-<hash of its source>, so an edited evaluator is rebuilt and an
# unchanged one never is. ARGO_EVAL_BIN overrides the built one. A cold build takes minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/hack/argo-eval"
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
BIN_DIR="$CACHE/bin"

log() { printf '[argo-eval] %s\n' "$*" >&2; }

version() { awk '$1 == "github.com/argoproj/argo-events" { print $2; exit }' "$SRC/go.mod"; }

bin_path() {
  if [ -n "${ARGO_EVAL_BIN:-}" ]; then echo "$ARGO_EVAL_BIN"; return; fi
  local hash
  hash=$(cd "$SRC" && cat go.mod go.sum $(ls ./*.go | sort) | sha256sum | cut -c1-12)
  echo "$BIN_DIR/argo-eval-$(version)-$hash"
}

cmd_build() {
  local out; out=$(bin_path)
  if [ ! -x "$out" ]; then
    mkdir -p "$BIN_DIR"
    command -v go >/dev/null || { log "go is required to build the evaluator"; exit 1; }
    # Concurrent callers (parallel tests, two worktrees) wait for one build.
    exec 9>"$BIN_DIR/.argo-eval.lock"
    flock 9
    if [ ! -x "$out" ]; then
      log "building the Sensor evaluator from Argo Events $(version) (cold: several minutes on 2 cores)"
      local start=$SECONDS
      ( cd "$SRC" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out.tmp" . )
      mv "$out.tmp" "$out"
      log "built $out in $((SECONDS - start)) s"
    fi
  fi
  echo "$out"
}

case "${1:-}" in
  build) cmd_build ;;
  path) bin_path ;;
  version) version ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
