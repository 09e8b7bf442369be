#!/usr/bin/env bash
# The demo: from nothing, a v1 stack, then `deployctl start --version v2 --wait`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/up.sh --fresh
deployctl=target/x86_64-unknown-linux-gnu/debug/deployctl
echo
echo "== serving now: $(curl -fsS http://127.0.0.1:8080/version)"
echo "== deployctl start --version v2 --wait"
"$deployctl" start --version v2 --wait
echo
"$deployctl" status
echo "== serving now: $(curl -fsS http://127.0.0.1:8080/version)"
cat <<TXT

Where to look:
  Temporal Web UI (the deploy, its steps and retries): http://127.0.0.1:8233/namespaces/default/workflows/deploy-local
  HAProxy stats (which colour carries traffic):        http://127.0.0.1:8404/stats
  Deploy again:  $deployctl start --version v1 --wait
  With a gate:   $deployctl start --version v2 --approve-before-switch, then $deployctl approve
TXT
