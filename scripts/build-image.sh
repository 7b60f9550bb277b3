#!/usr/bin/env bash
# Builds the image of the controller and the site pods (deploy/image/Containerfile) from this
# host's node and this repository, pulling nothing: no registry is needed.
#
#   npm run image -- [--engine docker|podman] [--tag NAME] [--save FILE] [--no-compile] [--force]
#
# The image is labelled with a hash of everything it is made of; when an image of that tag and
# hash exists already, nothing is built.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTAINERFILE=deploy/image/Containerfile
HASH_LABEL=skupper.io/content-hash
LOCK_FILE=${TMPDIR:-/tmp}/skupper-build-image.lock
LOCK_WAIT_SECONDS=300
ENGINE_PROBE_SECONDS=20

engine=""
tag=""
save=""
compile=1
force=0
work=""

usage() {
  cat <<EOF
Usage: bash scripts/build-image.sh [options]

Builds the container image of the Skupper controller and site pods, without pulling anything.

Options:
  --engine docker|podman  the engine to build with (default: docker if it answers, else podman)
  --tag NAME              the image name (default: localhost/skupper-ts:<version in package.json>)
  --save FILE             also write the image as a tarball for docker load, kind load
                          image-archive or k3s ctr images import
  --no-compile            use dist/ as it is instead of compiling first
  --force                 build even when an image with the same content exists
  -h, --help              print this help
EOF
}

say() { printf 'build-image: %s\n' "$*"; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
usage_error() { printf 'build-image: %s\n\n' "$*" >&2; usage >&2; exit 2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --engine) [ $# -ge 2 ] || usage_error "--engine needs a value: docker or podman."; engine=$2; shift 2 ;;
      --engine=*) engine=${1#*=}; shift ;;
      --tag) [ $# -ge 2 ] || usage_error "--tag needs an image name."; tag=$2; shift 2 ;;
      --tag=*) tag=${1#*=}; shift ;;
      --save) [ $# -ge 2 ] || usage_error "--save needs a file name."; save=$2; shift 2 ;;
      --save=*) save=${1#*=}; shift ;;
      --no-compile) compile=0; shift ;;
      --force) force=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "Unknown option \"$1\"." ;;
    esac
  done
  case $engine in
    ""|docker|podman) ;;
    *) usage_error "--engine must be docker or podman, not \"$engine\"." ;;
  esac
}

# The version the app reports: src/common/version.ts reads the same field of the same file.
package_version() {
  node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$ROOT/package.json"
}

engine_answers() {
  command -v "$1" >/dev/null 2>&1 && timeout "$ENGINE_PROBE_SECONDS" "$1" version >/dev/null 2>&1
}

choose_engine() {
  if [ -n "$engine" ]; then
    command -v "$engine" >/dev/null 2>&1 || die "$engine is not installed. Install it or pass --engine with the other engine."
    engine_answers "$engine" || die "$engine does not answer (\"$engine version\" failed${DOCKER_HOST:+ with DOCKER_HOST=$DOCKER_HOST}). Start its daemon or set DOCKER_HOST to one that runs."
    return
  fi
  for candidate in docker podman; do
    if engine_answers "$candidate"; then engine=$candidate; return; fi
  done
  die "No container engine is usable: neither \"docker version\"${DOCKER_HOST:+ (DOCKER_HOST=$DOCKER_HOST)} nor \"podman version\" succeeded. Start dockerd (or set DOCKER_HOST to a running one), or install podman (apt-get install podman runc)."
}

# Only one build at a time on this machine; a second one then finds the image up to date.
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$LOCK_FILE"
  if ! flock -n 9; then
    say "waiting for another image build to finish (at most ${LOCK_WAIT_SECONDS} s)"
    flock -w "$LOCK_WAIT_SECONDS" 9 || die "Another image build held $LOCK_FILE for more than ${LOCK_WAIT_SECONDS} s. Wait for it to end, or remove that file if no build is running."
  fi
  # Holding the lock, no other build runs: context directories left by killed builds are stale.
  rm -rf "${TMPDIR:-/tmp}"/skupper-image.*
}

compile_app() {
  local tsc=$ROOT/node_modules/typescript/bin/tsc
  [ -f "$tsc" ] || die "TypeScript is not installed in $ROOT/node_modules. Run \"npm ci\" there first, or pass --no-compile to use dist/ as it is."
  say "compiling (tsc -p tsconfig.json)"
  (cd "$ROOT" && node "$tsc" -p tsconfig.json) || die "The TypeScript build failed; fix the errors above and run again."
  # The web console's bundle (dist/src/console/web) is copied with dist/src.
  (cd "$ROOT" && node dist/scripts/build-console.js) || die "Building the web console failed; fix the errors above and run again."
}

node_binary() {
  local node
  node=$(command -v node) || die "node is not on PATH; the image is made from this host's node."
  readlink -f "$node"
}

# The files of the root filesystem: node, dash as /bin/sh, and every library ldd lists for them.
libraries_of() {
  ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' || true
}

rootfs_sources() {
  local node
  node=$(node_binary)
  { echo "$node"; echo /bin/dash; libraries_of "$node"; libraries_of /bin/dash; } | sort -u
}

# The hash of everything the image is made of; node_modules is represented by package-lock.json.
content_hash() {
  {
    (cd "$ROOT" && find dist/src -type f ! -name '*.map' -print0 | sort -z | xargs -0 sha256sum)
    (cd "$ROOT" && sha256sum package.json package-lock.json bin/skupper "$CONTAINERFILE" scripts/build-image.sh scripts/stage-app.sh deploy/bundle/*.sh)
    rootfs_sources | while read -r file; do printf '%s  %s\n' "$(sha256sum < "$file" | cut -d' ' -f1)" "$file"; done
  } | sha256sum | cut -d' ' -f1
}

image_label() {
  "$engine" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_id() {
  "$engine" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# tar flags that make the same files give the same bytes, so the engine's layer cache holds.
TAR_STABLE=(--sort=name --mtime=@0 --numeric-owner)

make_rootfs() {
  local rootfs=$work/rootfs node
  node=$(node_binary)
  mkdir -p "$rootfs"/{bin,usr/bin,etc,tmp,home/skupper}
  chmod 1777 "$rootfs/tmp"
  chmod 0755 "$rootfs/home/skupper"
  cp -L "$node" "$rootfs/usr/bin/node"
  cp -L /bin/dash "$rootfs/bin/sh"
  local lib
  for lib in $(libraries_of "$node") $(libraries_of /bin/dash); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nskupper:x:65532:65532:skupper:/home/skupper:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nskupper:x:65532:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  echo 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"
  : > "$rootfs/etc/hosts"
  : > "$rootfs/etc/resolv.conf"
  tar -C "$rootfs" "${TAR_STABLE[@]}" --owner=0 --group=0 --exclude=./home/skupper -cf "$work/context/rootfs.tar" .
  tar -C "$rootfs" "${TAR_STABLE[@]}" --owner=65532 --group=65532 -rf "$work/context/rootfs.tar" ./home/skupper
  rm -rf "$rootfs"
}

# The compiled app and its production dependencies (scripts/stage-app.sh, shared with bundles).
stage_app() {
  bash "$ROOT/scripts/stage-app.sh" "$work/context/app" || die "Staging the app failed; see the message above."
}

# Where the image's source is, without any credentials a remote URL may carry.
source_url() {
  git -C "$ROOT" config --get remote.origin.url 2>/dev/null | sed -E 's#//[^/@]*@#//#' || true
}

build_image() {
  local hash=$1 version=$2
  cp "$ROOT/$CONTAINERFILE" "$work/context/Containerfile"
  local args=(build
    --build-arg "VERSION=$version"
    --build-arg "SOURCE=$(source_url)"
    --build-arg "REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)"
    --label "$HASH_LABEL=$hash"
    --tag "$tag"
    --file "$work/context/Containerfile")
  local env=()
  if [ "$engine" = podman ]; then
    args+=(--pull=never)
  elif ! docker buildx version >/dev/null 2>&1; then
    # Without the buildx plugin, newer docker clients refuse BuildKit; the classic builder needs nothing.
    env=(DOCKER_BUILDKIT=0)
  fi
  say "building $tag with $engine"
  if ! env "${env[@]}" "$engine" "${args[@]}" "$work/context" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    die "\"$engine build\" failed; its output is above."
  fi
}

# A rebuild leaves the previous image of the tag without a name; remove it unless it is in use.
remove_replaced() {
  local old=$1 new
  new=$(image_id "$tag")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    "$engine" image rm "$old" >/dev/null 2>&1 || true
  fi
}

save_image() {
  say "saving $tag to $save"
  "$engine" save -o "$save.tmp" "$tag" || die "\"$engine save\" failed; check that $(dirname "$save") is writable and has space."
  chmod 0644 "$save.tmp"
  mv "$save.tmp" "$save"
}

report() {
  local bytes
  bytes=$("$engine" image inspect --format '{{.Size}}' "$tag")
  say "image $tag ($((bytes / 1000000)) MB, $engine)"
}

main() {
  parse_args "$@"
  local started=$SECONDS version hash old
  version=$(package_version)
  tag=${tag:-localhost/skupper-ts:$version}
  choose_engine
  take_lock
  [ "$compile" = 1 ] && compile_app
  [ -f "$ROOT/dist/src/cli/main.js" ] || die "$ROOT/dist/src is not built. Run without --no-compile, or run \"npx tsc -p tsconfig.json\" first."
  hash=$(content_hash)
  if [ "$force" = 0 ] && [ "$(image_label "$tag" "$HASH_LABEL")" = "$hash" ]; then
    say "$tag is up to date (content hash ${hash:0:12})"
  else
    old=$(image_id "$tag")
    work=$(mktemp -d "${TMPDIR:-/tmp}/skupper-image.XXXXXX")
    mkdir -p "$work/context"
    say "making the root filesystem from this host's node ($(node --version)) and dash"
    make_rootfs
    say "staging the compiled app and its production dependencies"
    stage_app
    build_image "$hash" "$version"
    remove_replaced "$old"
    say "built in $((SECONDS - started)) s"
  fi
  [ -n "$save" ] && save_image
  report
}

cleanup() { [ -n "$work" ] && rm -rf "$work"; return 0; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

main "$@"
