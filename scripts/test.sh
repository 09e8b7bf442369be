#!/usr/bin/env bash
# The whole test suite on real parts: builds the images, brings the compose stack up, then
# runs every unit and end-to-end test. The e2e tests reset the stack themselves as needed.
# Then the two bounded security checks: the Docker socket proxy against the real daemon, and
# the fuzz target over the name checks and HAProxy commands (FUZZ_SECONDS, 60 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# A fresh stack (empty database, v1): what a test checks is only what this run did.
scripts/up.sh --fresh
# The TLS test starts its own dev server: the static `temporal` binary of the stack's image.
mkdir -p target/tools
if [ ! -x target/tools/temporal ]; then
  image=$(docker create temporalio/temporal:1.9.1)
  docker cp "$image:/temporal" target/tools/temporal
  docker rm "$image" >/dev/null
fi
export TEMPORAL_BIN=$PWD/target/tools/temporal
cargo test --workspace --no-fail-fast --features deployctl-worker/failpoints -- --nocapture
haproxy/docker-proxy-check.sh
scripts/fuzz.sh
echo "test command took $(( $(date +%s) - started ))s"
