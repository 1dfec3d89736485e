#!/usr/bin/env bash
# Install the tools the attempt tests and benches use (prettier and typescript from the npm registry) into a cache folder
# outside the repository, and print the folder holding their executables (add it to PATH).
#
#   PATH="$(hack/install-test-tools.sh):$PATH" cargo test --test attempt_steps
#
# Cache: $CIHEALER_CACHE/tools (default ~/.cache/ci-healer/tools). PRETTIER_VERSION pins the version.
#
# Also (for the loopback GitHub of tests/loopback_github/): GitHub's own OpenAPI description, the
# npm package @octokit/openapi (`npm pack`, pinned by OCTOKIT_OPENAPI_VERSION), unpacked into
# $TOOLS/octokit-openapi-<version>/api.github.com.json; and yarn (YARN_VERSION), which the sample
# workflow's failing step (`yarn run format-check`) runs when validation re-runs it.
set -euo pipefail
PRETTIER_VERSION=${PRETTIER_VERSION:-3.6.2}
OCTOKIT_OPENAPI_VERSION=${OCTOKIT_OPENAPI_VERSION:-23.0.2}
YARN_VERSION=${YARN_VERSION:-1.22.22}
TYPESCRIPT_VERSION=${TYPESCRIPT_VERSION:-5.9.3}
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
TOOLS="$CACHE/tools"
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/node_modules/.bin/prettier" ] || [ "$("$TOOLS/node_modules/.bin/prettier" --version 2>/dev/null)" != "$PRETTIER_VERSION" ]; then
  command -v npm >/dev/null || { echo "npm is required to install prettier" >&2; exit 1; }
  echo "[install-test-tools] installing prettier@$PRETTIER_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "prettier@$PRETTIER_VERSION" >&2
fi
if [ ! -x "$TOOLS/node_modules/.bin/yarn" ] || [ "$("$TOOLS/node_modules/.bin/yarn" --version 2>/dev/null)" != "$YARN_VERSION" ]; then
  echo "[install-test-tools] installing yarn@$YARN_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "yarn@$YARN_VERSION" >&2
fi
SPEC_DIR="$TOOLS/octokit-openapi-$OCTOKIT_OPENAPI_VERSION"
if [ ! -s "$SPEC_DIR/api.github.com.json" ]; then
  echo "[install-test-tools] fetching @octokit/openapi@$OCTOKIT_OPENAPI_VERSION (GitHub's OpenAPI description) into $SPEC_DIR" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >/dev/null)
  tar -xzf "$tmp"/octokit-openapi-*.tgz -C "$tmp" package/generated/api.github.com.json package/LICENSE
  mkdir -p "$SPEC_DIR"
  mv "$tmp/package/generated/api.github.com.json" "$tmp/package/LICENSE" "$SPEC_DIR/"
  rm -rf "$tmp"
fi
if [ ! -x "$TOOLS/node_modules/.bin/tsc" ] || [ "$("$TOOLS/node_modules/.bin/tsc" --version 2>/dev/null)" != "Version $TYPESCRIPT_VERSION" ]; then
  echo "[install-test-tools] installing typescript@$TYPESCRIPT_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "typescript@$TYPESCRIPT_VERSION" >&2
fi
echo "$TOOLS/node_modules/.bin"
