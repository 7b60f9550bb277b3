#!/usr/bin/env bash
# Stages the compiled app and its production dependencies, made from this clone's dist/ and
# node_modules without the network: the app/ of the container image (scripts/build-image.sh) and
# of installation bundles (skupper system generate-bundle).
#
#   bash scripts/stage-app.sh DEST
#
# DEST must not exist. It gets package.json, bin/skupper, dist/src (no source maps), the
# installer scripts of bundles (deploy/bundle), node_modules without development dependencies,
# type declarations or source maps, and the marker file STAGED_MARKER below, by which a staged
# app is told from a clone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAGED_MARKER=.skupper-app

die() { printf 'stage-app: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { printf 'Usage: bash scripts/stage-app.sh DEST\n' >&2; exit 2; }
app=$1
[ ! -e "$app" ] || die "$app exists already; give a path that does not exist."
[ -d "$ROOT/node_modules" ] || die "$ROOT/node_modules is missing. Run \"npm ci\" there first."
[ -f "$ROOT/dist/src/cli/main.js" ] || die "$ROOT/dist/src is not built. Run \"npx tsc -p tsconfig.json\" in $ROOT first."
command -v npm >/dev/null 2>&1 || die "npm is not on PATH; it is needed to drop the development dependencies."

log=$(mktemp "${TMPDIR:-/tmp}/skupper-stage-app.XXXXXX")
trap 'rm -f "$log"' EXIT

mkdir -p "$app/bin"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$app/"
cp "$ROOT/bin/skupper" "$app/bin/"
mkdir -p "$app/deploy"
cp -R "$ROOT/deploy/bundle" "$app/deploy/"
tar -C "$ROOT" --exclude='*.map' -cf - dist/src | tar -C "$app" -xf -
cp -a "$ROOT/node_modules/." "$app/node_modules/"
(cd "$app" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
  || die "\"npm prune --omit=dev\" failed in the staged copy of node_modules. Run \"npm ci\" in $ROOT and try again."
(cd "$app" && npm ls --omit=dev --offline --all >/dev/null 2>"$log") \
  || die "The production dependencies in $ROOT/node_modules do not match package-lock.json: $(tail -5 "$log"). Run \"npm ci\" in $ROOT and try again."
# Nothing below is read at run time: type declarations and source maps.
find "$app/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
rm -rf "$app/node_modules/@types" "$app/package-lock.json"
printf 'A staged Skupper app (scripts/stage-app.sh): dist/src and production node_modules only.\n' > "$app/$STAGED_MARKER"
