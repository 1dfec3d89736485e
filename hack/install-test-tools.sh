#!/usr/bin/env bash
# Install the tools the tests and benches use outside Cargo, and print the PATH entries that hold
# them (colon-separated; prepend them to PATH):
#
#   PATH="$(hack/install-test-tools.sh):$PATH" cargo test --test attempt_steps
#
# - prettier, typescript and yarn from the npm registry, into a cache folder outside the repository
#   (the attempt tests' formatters; yarn runs the sample workflow's failing step `yarn run
#   format-check` when validation re-runs it). PRETTIER_VERSION, TYPESCRIPT_VERSION, YARN_VERSION pin them.
# - For the loopback GitHub of tests/loopback_github/: GitHub's own OpenAPI description, the npm
#   package @octokit/openapi (`npm pack`, pinned by OCTOKIT_OPENAPI_VERSION), unpacked into
#   $TOOLS/octokit-openapi-<version>/api.github.com.json; and GitHub's GraphQL schema, the npm
#   package @octokit/graphql-schema (with graphql-js, pinned by OCTOKIT_GRAPHQL_SCHEMA_VERSION), which
#   hack/github-graphql-check.mjs uses to check each GraphQL request.
# - Chromium and chromedriver, Debian's `chromium` and `chromium-driver` (apt-get), for the
#   dashboard's browser test.
# - promtool, from Debian's `prometheus` package: downloaded with apt-get and only promtool is
#   extracted into the cache (installing the package would also install and start a Prometheus
#   server on a fixed port), for the metrics and alert-rule tests.
#
# Cache: $CIHEALER_CACHE/tools (default ~/.cache/ci-healer/tools). Safe to run concurrently.
set -euo pipefail
PRETTIER_VERSION=${PRETTIER_VERSION:-3.6.2}
OCTOKIT_OPENAPI_VERSION=${OCTOKIT_OPENAPI_VERSION:-23.0.2}
OCTOKIT_GRAPHQL_SCHEMA_VERSION=${OCTOKIT_GRAPHQL_SCHEMA_VERSION:-15.26.1}
YARN_VERSION=${YARN_VERSION:-1.22.22}
TYPESCRIPT_VERSION=${TYPESCRIPT_VERSION:-5.9.3}
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
TOOLS="$CACHE/tools"
mkdir -p "$TOOLS/bin"
exec 9>"$TOOLS/.install.lock"
flock 9
log() { echo "[install-test-tools] $*" >&2; }

if [ ! -x "$TOOLS/node_modules/.bin/prettier" ] || [ "$("$TOOLS/node_modules/.bin/prettier" --version 2>/dev/null)" != "$PRETTIER_VERSION" ]; then
  command -v npm >/dev/null || { echo "npm is required to install prettier" >&2; exit 1; }
  log "installing prettier@$PRETTIER_VERSION into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "prettier@$PRETTIER_VERSION" >&2
fi
if [ ! -x "$TOOLS/node_modules/.bin/yarn" ] || [ "$("$TOOLS/node_modules/.bin/yarn" --version 2>/dev/null)" != "$YARN_VERSION" ]; then
  log "installing yarn@$YARN_VERSION into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "yarn@$YARN_VERSION" >&2
fi
SPEC_DIR="$TOOLS/octokit-openapi-$OCTOKIT_OPENAPI_VERSION"
if [ ! -s "$SPEC_DIR/api.github.com.json" ]; then
  log "fetching @octokit/openapi@$OCTOKIT_OPENAPI_VERSION (GitHub's OpenAPI description) into $SPEC_DIR"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >/dev/null)
  tar -xzf "$tmp"/octokit-openapi-*.tgz -C "$tmp" package/generated/api.github.com.json package/LICENSE
  mkdir -p "$SPEC_DIR"
  mv "$tmp/package/generated/api.github.com.json" "$tmp/package/LICENSE" "$SPEC_DIR/"
  rm -rf "$tmp"
fi
# GitHub's GraphQL schema with graphql-js (the reference implementation), for the loopback GitHub's
# check of GraphQL requests (hack/github-graphql-check.mjs).
GQL_PKG="$TOOLS/node_modules/@octokit/graphql-schema/package.json"
if [ ! -s "$GQL_PKG" ] || ! grep -q "\"version\": \"$OCTOKIT_GRAPHQL_SCHEMA_VERSION\"" "$GQL_PKG"; then
  log "installing @octokit/graphql-schema@$OCTOKIT_GRAPHQL_SCHEMA_VERSION (GitHub's GraphQL schema) into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "@octokit/graphql-schema@$OCTOKIT_GRAPHQL_SCHEMA_VERSION" >&2
fi
if [ ! -x "$TOOLS/node_modules/.bin/tsc" ] || [ "$("$TOOLS/node_modules/.bin/tsc" --version 2>/dev/null)" != "Version $TYPESCRIPT_VERSION" ]; then
  log "installing typescript@$TYPESCRIPT_VERSION into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "typescript@$TYPESCRIPT_VERSION" >&2
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null; then
    log "installing chromium and chromium-driver (Debian packages)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
  else
    log "no apt-get: install Chromium and chromedriver and put them on PATH (or set CIHEALER_CHROMIUM, CIHEALER_CHROMEDRIVER)"
  fi
fi

if [ ! -x "$TOOLS/bin/promtool" ]; then
  if command -v apt-get >/dev/null; then
    log "extracting promtool from Debian's prometheus package"
    w=$(mktemp -d)
    ( cd "$w"
      if ! apt-get download -o APT::Sandbox::User=root prometheus >&2 2>/dev/null; then
        as_root apt-get update -qq >&2
        apt-get download -o APT::Sandbox::User=root prometheus >&2
      fi
      dpkg-deb -x prometheus_*.deb x
      install -m 0755 x/usr/bin/promtool "$TOOLS/bin/promtool.tmp" )
    mv "$TOOLS/bin/promtool.tmp" "$TOOLS/bin/promtool"
    rm -rf "$w"
  else
    log "no apt-get: put promtool (from a Prometheus release) in $TOOLS/bin"
  fi
fi

echo "$TOOLS/bin:$TOOLS/node_modules/.bin"
