#!/usr/bin/env bash
# The whole test suite on real parts: builds the images, brings the compose stack up, then
# runs every unit and end-to-end test. The e2e tests reset the stack themselves as needed.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# A fresh stack (empty database, v1): what a test checks is only what this run did.
scripts/up.sh --fresh
cargo test --workspace --features deployctl-worker/failpoints -- --nocapture
echo "test command took $(( $(date +%s) - started ))s"
