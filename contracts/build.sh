#!/usr/bin/env bash
# Rebuilds contracts/out/X402TestToken.json (ABI + bytecode) from contracts/src/X402TestToken.sol
# with the npm package `solc` (solc-js) at a pinned version, installed into .tools/solc (which
# git ignores) when missing. The output is deterministic: same source, same artifact.
#
# Usage: contracts/build.sh            rebuild the committed artifact
#        contracts/build.sh --check    fail if the committed artifact is stale
set -euo pipefail
cd "$(dirname "$0")/.."

SOLC_VERSION=0.8.30
prefix=.tools/solc
solc_pkg="$prefix/node_modules/solc"
artifact=contracts/out/X402TestToken.json

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

fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
node contracts/compile.js "$solc_pkg" >"$fresh"

if [ "$mode" = check ]; then
  if ! cmp -s "$fresh" "$artifact"; then
    echo "$artifact is stale: run contracts/build.sh and commit the result" >&2
    diff -u "$artifact" "$fresh" | head -40 >&2 || true
    exit 1
  fi
  echo "$artifact is up to date" >&2
else
  mkdir -p "$(dirname "$artifact")"
  cp "$fresh" "$artifact"
  echo "wrote $artifact" >&2
fi
