#!/usr/bin/env bash
# Builds every image compose.yaml names, locally and offline (there is no registry):
#   - haproxy, postgres, redis, temporal: scripts/build-infra-images.sh (Debian rootfs, scratch);
#   - ecomweb-api:v1, :v2, :broken (a failing migration), :leaky, :flaky, :sick, and deployctl-worker:latest: FROM scratch with our static binaries;
#   - shop:v1, :v2, :broken and shop-worker:<each>: examples/shop/build.sh.
# v1 carries the first migration, v2 both: one build of the binary serves every version.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

scripts/build-infra-images.sh


echo "== building the static binaries"
# The failpoints feature compiles crash points in (inactive unless FAILPOINTS names one); the
# fault tests use them. scripts/test.sh builds with the same features, so nothing rebuilds.
cargo build --workspace --bins --features deployctl-worker/failpoints
context=target/images
rm -rf "$context" && mkdir -p "$context"
# The images carry the dev profile's binaries, stripped of their symbol tables (77 → 50 MB for
# ecomweb, at no build cost); a release build would be 31 MB but costs a 15-minute cold build
# on a 2-core machine (bench/results/after: images).
bin=$context/bin
mkdir -p "$bin"
for binary in ecomweb deployctl-worker; do
  strip -o "$bin/$binary" "target/x86_64-unknown-linux-gnu/debug/$binary"
done

build() { # name dockerfile-dir [build args...]: builds $context/<name> with that Dockerfile
  local name=$1 dir=$2; shift 2
  cp "$dir/Dockerfile" "$context/${name//:/_}/Dockerfile"
  local output
  output=$(DOCKER_BUILDKIT=0 docker build --quiet "$@" -t "$name" "$context/${name//:/_}" 2>&1) || {
    echo "$output" >&2
    return 1
  }
  echo "built $name"
}

mkdir -p "$context/deployctl-worker_latest"
cp "$bin/deployctl-worker" "$context/deployctl-worker_latest/"
build deployctl-worker:latest images/deployctl-worker

migrations=(sample-app/migrations/*/)
for count in 1 2; do
  version="v$count"
  dir="$context/ecomweb-api_$version"
  mkdir -p "$dir/migrations"
  cp "$bin/ecomweb" "$dir/"
  for migration in "${migrations[@]:0:$count}"; do
    cp -r "$migration" "$dir/migrations/"
  done
  build "ecomweb-api:$version" images/app --build-arg "VERSION=$version" --build-arg "MIGRATIONS=$count"
done

# ecomweb-api:broken: v2 plus a migration that fails, for the failure tests.
dir="$context/ecomweb-api_broken"
mkdir -p "$dir/migrations"
cp "$bin/ecomweb" "$dir/"
cp -r "${migrations[@]}" sample-app/broken-migrations/*/ "$dir/migrations/"
build "ecomweb-api:broken" images/app --build-arg "VERSION=broken" --build-arg "MIGRATIONS=3"

# ecomweb-api:leaky: :broken, and it prints DATABASE_URL (password included) as it fails: the
# secrets test proves that the password never reaches Temporal's history.
dir="$context/ecomweb-api_leaky"
mkdir -p "$dir/migrations"
cp "$bin/ecomweb" "$dir/"
cp -r "${migrations[@]}" sample-app/broken-migrations/*/ "$dir/migrations/"
build "ecomweb-api:leaky" images/app --build-arg "VERSION=leaky" --build-arg "MIGRATIONS=3" --build-arg "LOG_DATABASE_URL=1"

# ecomweb-api:flaky: v2's schema, but every 3rd page answers 500 (health is fine): a bad release
# that only the bake's watch on HAProxy's 5xx counters catches.
dir="$context/ecomweb-api_flaky"
mkdir -p "$dir/migrations"
cp "$bin/ecomweb" "$dir/"
cp -r "${migrations[@]}" "$dir/migrations/"
build "ecomweb-api:flaky" images/app --build-arg "VERSION=flaky" --build-arg "MIGRATIONS=2" --build-arg "FAIL_EVERY=3"

# ecomweb-api:sick: v2's schema, but /health never passes: a release that never becomes healthy.
dir="$context/ecomweb-api_sick"
mkdir -p "$dir/migrations"
cp "$bin/ecomweb" "$dir/"
cp -r "${migrations[@]}" "$dir/migrations/"
build "ecomweb-api:sick" images/app --build-arg "VERSION=sick" --build-arg "MIGRATIONS=2" --build-arg "HEALTH=fail"

# The shop (examples/shop): an app deployctl did not build, from the Debian base image, and
# its worker image with deployctl-worker added.
examples/shop/build.sh "$bin"

echo "images built in $(( $(date +%s) - started ))s"
