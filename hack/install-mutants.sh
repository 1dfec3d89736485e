#!/usr/bin/env bash
# Install cargo-mutants (mutation testing, https://mutants.rs) from crates.io into a cache folder
# outside the repository, and print the folder holding its executable (add it to PATH).
#
#   PATH="$(hack/install-mutants.sh):$PATH" cargo mutants --list
#
# Cache: $CIHEALER_CACHE/tools/cargo (default ~/.cache/ci-healer/tools/cargo). CARGO_MUTANTS_VERSION
# pins the version.
set -euo pipefail
CARGO_MUTANTS_VERSION=${CARGO_MUTANTS_VERSION:-27.1.0}
CACHE=${CIHEALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-healer}
ROOT="$CACHE/tools/cargo"
BIN="$ROOT/bin/cargo-mutants"
if [ ! -x "$BIN" ] || [ "$("$BIN" mutants --version 2>/dev/null | awk '{print $2}')" != "$CARGO_MUTANTS_VERSION" ]; then
  echo "[install-mutants] installing cargo-mutants $CARGO_MUTANTS_VERSION into $ROOT" >&2
  cargo install --locked --quiet --root "$ROOT" cargo-mutants --version "$CARGO_MUTANTS_VERSION" >&2
fi
echo "$ROOT/bin"
