#!/usr/bin/env bash
# The benchmark in one command: deployctl against the seed's manual procedure on the compose
# stack, under load, in one run; then rollback, 2 to 20 workers, the history's size, the
# worker's footprint, and debug against release images. Writes deploy.json, images.json,
# results.md and latency.png to OUT_DIR (default bench/results/<today>). It starts from a fresh
# stack, and leaves the stack up.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/$(date -u +%Y-%m-%d)}
started=$(date +%s)
python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet matplotlib
# The images, once (scripts/up.sh builds them on a fresh machine).
docker image inspect ecomweb-api:v2 >/dev/null 2>&1 || scripts/build-images.sh
# --workspace, as scripts/test.sh builds: the same features, so the test suite's build serves.
features=(--workspace --features deployctl-worker/failpoints)
cargo test -q "${features[@]}" --bench deploy --no-run
# The manual procedure edits haproxy.cfg in place, as its operator would; put it back after.
config=$(cat haproxy/haproxy.cfg)
trap 'printf "%s\n" "$config" > haproxy/haproxy.cfg' EXIT
cargo test -q "${features[@]}" --bench deploy -- "$out"
python3 bench/images.py "$out"
python3 bench/report.py "$out"
echo "the benchmark took $(( $(date +%s) - started ))s; see $out/results.md"
