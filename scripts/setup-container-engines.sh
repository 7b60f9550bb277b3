#!/usr/bin/env bash
# Prepares this Debian host for the podman and docker platforms' tests (run by .ci/run, as root):
# installs podman, runc and docker.io when missing, and gives rootful podman the settings it needs
# on machines without systemd and with a hybrid cgroup layout (see
# ../shared/reference/containers-and-clusters.md). Idempotent; an existing containers.conf that
# already says something about these keys is left as it is.
set -euo pipefail

say() { printf 'setup-container-engines: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "not root: skipped (the container tests skip and say why)"
  exit 0
fi

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
# podman runs --init containers with catatonit
[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || need+=(catatonit)
command -v dockerd >/dev/null || need+=(docker.io)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if [ -f "$conf" ] && grep -Eq '^\s*(default_ulimits|runtime|cgroup_manager)\s*=' "$conf"; then
  say "$conf already configured; left as it is"
else
  mkdir -p /etc/containers
  hard=$(ulimit -Hn)
  {
    [ -f "$conf" ] && cat "$conf" && echo
    cat <<CONF
# Written by skupper-ts scripts/setup-container-engines.sh: root here may not raise rlimits
# (no CAP_SYS_RESOURCE), crun refuses the hybrid cgroup layout, and there is no systemd.
[containers]
default_ulimits = ["nofile=${hard}:${hard}", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  } > "$conf.tmp"
  mv "$conf.tmp" "$conf"
  say "wrote $conf"
fi
say "podman $(podman --version | awk '{print $3}'), $(dockerd --version | cut -d, -f1)"
