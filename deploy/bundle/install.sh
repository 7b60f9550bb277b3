#!/bin/sh
# Installs the Skupper site of an installation bundle on this host, or removes it (-x).
# "skupper system generate-bundle" copies this file into each bundle, filling in the values
# below; see docs/bundles.md. POSIX sh: runs with dash, busybox sh and bash.
set -eu

BUNDLE_NAME='@BUNDLE_NAME@'
BUNDLE_SITE='@BUNDLE_SITE@'
BUNDLE_NAMESPACE='@BUNDLE_NAMESPACE@'
BUNDLE_VERSION='@BUNDLE_VERSION@'
MIN_NODE_MAJOR=20

# How the user runs this script, for messages (the self-extracting bundle sets it to "sh NAME.sh").
self=${SKUPPER_BUNDLE_SELF:-sh $0}

usage() {
  cat <<EOF
Usage: $self [-n namespace] [-d dir] [-p platform] [-x] [-h]

Installs Skupper site "$BUNDLE_SITE" (skupper $BUNDLE_VERSION, bundle "$BUNDLE_NAME") on this
host and starts it. Needs Node.js $MIN_NODE_MAJOR or later. Running it again upgrades the
installed app and keeps the site's keys, links and state.

Options:
  -n namespace  the namespace of the site (default: $BUNDLE_NAMESPACE)
  -d dir        where to install: the app (dir/app), the skupper command of this
                installation (dir/bin/skupper) and the site (dir/namespaces/<namespace>).
                Default: \$SKUPPER_HOME if set, else /var/lib/skupper for root, else
                \${XDG_DATA_HOME:-~/.local/share}/skupper
  -p platform   the platform to run the site on: linux (the default, and the only one
                bundles install on for now)
  -x            remove the site instead: stop it and delete its namespace (and the app and
                dir/bin/skupper once no site is left in dir)
  -h            print this help
EOF
}

say() { printf '%s\n' "$*"; }
fail() { printf 'Error: %s\n' "$*" >&2; exit 1; }
usage_error() {
  printf 'Error: %s\n' "$*" >&2
  printf 'Run "%s -h" for the options.\n' "$self" >&2
  exit 2
}

# A word for sh, single-quoted: for the paths written into the skupper command.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# A namespace is a lower-case RFC 1123 label, as the skupper command requires.
valid_namespace() {
  [ ${#1} -ge 1 ] && [ ${#1} -le 63 ] || return 1
  case $1 in
    *[!a-z0-9-]* | -* | *-) return 1 ;;
  esac
  return 0
}

default_prefix() {
  if [ -n "${SKUPPER_HOME:-}" ]; then
    printf '%s' "$SKUPPER_HOME"
  elif [ "$(id -u)" = 0 ]; then
    printf '/var/lib/skupper'
  elif [ -n "${XDG_DATA_HOME:-}" ]; then
    printf '%s/skupper' "$XDG_DATA_HOME"
  elif [ -n "${HOME:-}" ]; then
    printf '%s/.local/share/skupper' "$HOME"
  fi
}

# Sets $node to a Node.js of version MIN_NODE_MAJOR or later, or fails saying what to install.
find_node() {
  node=$(command -v node 2>/dev/null) || node=""
  [ -n "$node" ] || fail "Node.js is not installed (there is no \"node\" on PATH). Skupper needs Node.js $MIN_NODE_MAJOR or later: install it (https://nodejs.org/en/download, or your distribution's nodejs package), then run this again."
  node_version=$("$node" -p 'process.versions.node' 2>/dev/null) || fail "\"$node\" does not run (\"$node -p process.versions.node\" failed). Skupper needs Node.js $MIN_NODE_MAJOR or later."
  node_major=${node_version%%.*}
  case $node_major in
    '' | *[!0-9]*) fail "cannot tell which version \"$node\" is (it says \"$node_version\"). Skupper needs Node.js $MIN_NODE_MAJOR or later." ;;
  esac
  [ "$node_major" -ge "$MIN_NODE_MAJOR" ] || fail "Node.js $node_version ($node) is too old: Skupper needs Node.js $MIN_NODE_MAJOR or later. Install a newer one (https://nodejs.org/en/download) and run this again."
}

# The skupper command of this bundle (not yet installed) on the sites of the prefix.
bundle_skupper() { SKUPPER_HOME=$prefix "$node" "$here/app/bin/skupper" "$@"; }

# The pid of the namespace's running site process, or nothing. As the skupper command checks it:
# the process exists and (where /proc tells) runs the site's main module, so neither a pid
# reused by another process nor an exited process not yet reaped counts.
site_pid() {
  pid_file=$prefix/namespaces/$1/runtime/site.pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file" 2>/dev/null) || return 0
  case $pid in '' | *[!0-9]*) return 0 ;; esac
  kill -0 "$pid" 2>/dev/null || return 0
  if [ -d /proc/self ]; then
    tr '\000' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'site/main\.js' || return 0
  fi
  printf '%s' "$pid"
}

stop_site() {
  if [ -n "$(site_pid "$namespace")" ]; then
    say "Stopping the site process of namespace \"$namespace\"..."
    bundle_skupper -n "$namespace" system stop >/dev/null || fail "the site process of namespace \"$namespace\" did not stop; see the message above."
  fi
}

install_app() {
  say "Installing skupper $BUNDLE_VERSION in $prefix/app..."
  rm -rf "$prefix/.app.new" "$prefix/.app.old"
  cp -RP "$here/app" "$prefix/.app.new"
  if [ -d "$prefix/app" ]; then mv "$prefix/app" "$prefix/.app.old"; fi
  mv "$prefix/.app.new" "$prefix/app"
  rm -rf "$prefix/.app.old"
}

# dir/bin/skupper: the skupper command of this installation, always on the sites of dir.
install_command() {
  mkdir -p "$prefix/bin"
  tmp=$prefix/bin/.skupper.$$.tmp
  {
    say '#!/bin/sh'
    say "# The skupper command of the Skupper sites in $prefix"
    say "# (written by the installer of bundle \"$BUNDLE_NAME\"; see docs/bundles.md)."
    say "SKUPPER_HOME=$(quote "$prefix")"
    say 'export SKUPPER_HOME'
    say "node=$(quote "$node")"
    # shellcheck disable=SC2016 # written as it is: expanded when the command runs
    say '[ -x "$node" ] || node=node'
    say "exec \"\$node\" $(quote "$prefix/app/bin/skupper") \"\$@\""
  } >"$tmp"
  chmod 0700 "$tmp"
  mv "$tmp" "$prefix/bin/skupper"
}

# Writes the bundle's resources into the namespace's input; files already there with the same
# content are left alone, and so is every other resource (the Links and Secrets the site wrote
# when it redeemed a token, resources added since).
install_resources() {
  input=$prefix/namespaces/$namespace/input/resources
  mkdir -p "$input"
  for file in "$here"/resources/*; do
    [ -f "$file" ] || continue
    target=$input/${file##*/}
    if [ -f "$target" ] && command -v cmp >/dev/null 2>&1 && cmp -s "$file" "$target"; then continue; fi
    # A dot-file until it is complete: the site process ignores those.
    cp "$file" "$input/.skupper-bundle.$$.tmp"
    mv "$input/.skupper-bundle.$$.tmp" "$target"
  done
}

# Sites of other namespaces in the prefix run the app they were started with until restarted.
note_other_sites() {
  others=""
  for dir in "$prefix"/namespaces/*; do
    [ -d "$dir" ] || continue
    other=${dir##*/}
    [ "$other" != "$namespace" ] || continue
    if [ -n "$(site_pid "$other")" ]; then others="$others $other"; fi
  done
  [ -n "$others" ] || return 0
  say "Note: the sites of namespace(s)$others in $prefix still run the app they were started with; restart each with \"$prefix/bin/skupper -n <namespace> system reload\"."
}

install_site() {
  mkdir -p "$prefix"
  prefix=$(cd "$prefix" && pwd -P)
  if [ -d "$prefix/namespaces/$namespace" ]; then
    say "Namespace \"$namespace\" exists in $prefix: upgrading it (its keys, links and state are kept)."
  fi
  stop_site
  install_app
  install_command
  install_resources
  say "Starting site \"$BUNDLE_SITE\" in namespace \"$namespace\"..."
  "$prefix/bin/skupper" -n "$namespace" system start \
    || fail "the site did not start; see the message above and the log $prefix/namespaces/$namespace/runtime/logs/site.log. Run this installer again once the problem is fixed."
  note_other_sites
  cat <<EOF

Skupper site "$BUNDLE_SITE" is installed and running in namespace "$namespace" ($prefix).
Use it with the skupper command of this installation (add $prefix/bin to PATH to type just "skupper"):
  $prefix/bin/skupper -n $namespace site status
  $prefix/bin/skupper -n $namespace link status
The site process does not start by itself when this host boots; start it with
  $prefix/bin/skupper -n $namespace system start
Remove the site with: $self -x -n $namespace -d $prefix
EOF
}

remove_site() {
  if [ ! -d "$prefix" ]; then
    say "There is no Skupper installation in $prefix: nothing to remove."
    return 0
  fi
  prefix=$(cd "$prefix" && pwd -P)
  if [ -d "$prefix/namespaces/$namespace" ]; then
    stop_site
    rm -rf "$prefix/namespaces/$namespace"
    say "Namespace \"$namespace\" has been removed from $prefix."
  else
    say "There is no namespace \"$namespace\" in $prefix: nothing to remove."
  fi
  if [ -d "$prefix/namespaces" ] && [ -z "$(ls -A "$prefix/namespaces")" ]; then rmdir "$prefix/namespaces"; fi
  if [ ! -d "$prefix/namespaces" ] && { [ -d "$prefix/app" ] || [ -f "$prefix/bin/skupper" ]; }; then
    rm -rf "$prefix/app" "$prefix/bin/skupper"
    rmdir "$prefix/bin" 2>/dev/null || true
    say "No site is left in $prefix: the app and $prefix/bin/skupper have been removed too."
  fi
}

main() {
  namespace=$BUNDLE_NAMESPACE
  prefix=""
  platform=linux
  remove=0
  while getopts n:d:p:xh opt; do
    case $opt in
      n) namespace=$OPTARG ;;
      d) prefix=$OPTARG ;;
      p) platform=$OPTARG ;;
      x) remove=1 ;;
      h) usage; exit 0 ;;
      *) usage_error "unknown option, or an option without its value (see above)." ;;
    esac
  done
  shift $((OPTIND - 1))
  [ $# -eq 0 ] || usage_error "unexpected argument \"$1\": the installer takes options only."

  valid_namespace "$namespace" || usage_error "namespace \"$namespace\" is not valid: use lower case letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)."
  case $platform in
    linux) ;;
    podman | docker) usage_error "this bundle cannot install on the $platform platform yet: it installs on linux (-p linux, the default), where the site runs as a process of this host." ;;
    *) usage_error "platform \"$platform\" is not one this bundle installs on: use -p linux (the default)." ;;
  esac
  [ -n "$prefix" ] || prefix=$(default_prefix)
  [ -n "$prefix" ] || usage_error "HOME is not set, so there is no default install directory: give one with -d."
  case $prefix in
    *'
'*) usage_error "the install directory must not contain a line break." ;;
  esac

  here=$(cd "$(dirname "$0")" && pwd -P)
  [ -f "$here/app/bin/skupper" ] || fail "$here/app is missing or incomplete: extract the whole bundle and run install.sh from where it was extracted."
  find_node
  umask 077
  if [ "$remove" = 1 ]; then remove_site; else install_site; fi
}

main "$@"
