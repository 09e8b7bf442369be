#!/usr/bin/env bash
# Builds the shop's images, as its own team would, from the Debian base image that
# scripts/build-infra-images.sh imports:
#   shop:v1 (the first migration), shop:v2 (both), shop:broken (both, plus one that fails);
#   shop-worker:<each>: that image plus deployctl-worker beside the shop's own worker.
# Usage: examples/shop/build.sh DIR, where DIR holds the (stripped) deployctl-worker binary.
set -euo pipefail
bin=$(cd "${1:?usage: build.sh DIR-WITH-deployctl-worker}" && pwd)
cd "$(dirname "$0")"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

build() { # tag dockerfile [build args...]
  local tag=$1 dockerfile=$2 output; shift 2
  output=$(DOCKER_BUILDKIT=0 docker build --quiet -f "$context/$dockerfile" "$@" -t "$tag" "$context" 2>&1) || {
    echo "$output" >&2
    return 1
  }
  echo "built $tag"
}

migrations=(prisma/migrations/*/)
for version in v1 v2 broken; do
  rm -rf "${context:?}"/*
  cp -r app Dockerfile worker.Dockerfile supervisord.conf worker-healthcheck.sh "$bin/deployctl-worker" "$context/"
  mkdir -p "$context/prisma/migrations"
  case $version in
    v1) cp -r "${migrations[0]}" "$context/prisma/migrations/" ;;
    v2) cp -r "${migrations[@]}" "$context/prisma/migrations/" ;;
    broken) cp -r "${migrations[@]}" broken-migrations/*/ "$context/prisma/migrations/" ;;
  esac
  build "shop:$version" Dockerfile --build-arg "VERSION=$version"
  build "shop-worker:$version" worker.Dockerfile --build-arg "VERSION=$version"
done
