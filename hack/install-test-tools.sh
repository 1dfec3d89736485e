#!/usr/bin/env bash
# Install the tools the attempt tests and benches use (prettier and typescript from the npm registry) into a cache folder
# outside the repository, and print the folder holding their executables (add it to PATH).
#
#   PATH="$(hack/install-test-tools.sh):$PATH" cargo test --test attempt_steps
#
# Cache: $CIHEALER_CACHE/tools (default ~/.cache/ci-healer/tools). PRETTIER_VERSION pins the version.
set -euo pipefail
PRETTIER_VERSION=${PRETTIER_VERSION:-3.6.2}
TYPESCRIPT_VERSION=${TYPESCRIPT_VERSION:-5.9.3}
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
TOOLS="$CACHE/tools"
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/node_modules/.bin/prettier" ] || [ "$("$TOOLS/node_modules/.bin/prettier" --version 2>/dev/null)" != "$PRETTIER_VERSION" ]; then
  command -v npm >/dev/null || { echo "npm is required to install prettier" >&2; exit 1; }
  echo "[install-test-tools] installing prettier@$PRETTIER_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "prettier@$PRETTIER_VERSION" >&2
fi
if [ ! -x "$TOOLS/node_modules/.bin/tsc" ] || [ "$("$TOOLS/node_modules/.bin/tsc" --version 2>/dev/null)" != "Version $TYPESCRIPT_VERSION" ]; then
  echo "[install-test-tools] installing typescript@$TYPESCRIPT_VERSION into $TOOLS" >&2
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "typescript@$TYPESCRIPT_VERSION" >&2
fi
echo "$TOOLS/node_modules/.bin"
