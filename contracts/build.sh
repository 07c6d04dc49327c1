#!/usr/bin/env bash
# Rebuilds contracts/out/*.json (ABI + bytecode, one per contract; contracts/compile.js lists
# them) from contracts/src/*.sol with the npm package `solc` (solc-js) at a pinned version,
# installed into .tools/solc (which git ignores) when missing. The output is deterministic:
# same source, same artifact.
#
# Usage: contracts/build.sh            rebuild the committed artifacts
#        contracts/build.sh --check    fail if a committed artifact is stale, missing or extra
set -euo pipefail
cd "$(dirname "$0")/.."

SOLC_VERSION=0.8.30
prefix=.tools/solc
solc_pkg="$prefix/node_modules/solc"
out=contracts/out

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

installed=$(node -p "require('./$solc_pkg/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$SOLC_VERSION" ]; then
  echo "installing solc $SOLC_VERSION from npm into $prefix" >&2
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "solc@$SOLC_VERSION" >/dev/null
fi

fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
node contracts/compile.js "$solc_pkg" "$fresh"

if [ "$mode" = check ]; then
  stale=0
  for artifact in "$fresh"/*.json; do
    name=$(basename "$artifact")
    if ! cmp -s "$artifact" "$out/$name"; then
      echo "$out/$name is stale or missing: run contracts/build.sh and commit the result" >&2
      diff -u "$out/$name" "$artifact" 2>&1 | head -40 >&2 || true
      stale=1
    fi
  done
  for artifact in "$out"/*.json; do
    [ -e "$artifact" ] || continue
    if [ ! -e "$fresh/$(basename "$artifact")" ]; then
      echo "$artifact is not built from any source: remove it" >&2
      stale=1
    fi
  done
  [ "$stale" = 0 ] || exit 1
  echo "$out/*.json are up to date" >&2
else
  mkdir -p "$out"
  rm -f "$out"/*.json
  cp "$fresh"/*.json "$out"/
  echo "wrote $(ls "$fresh" | sed "s|^|$out/|" | tr '\n' ' ')" >&2
fi
