#!/usr/bin/env bash
# Records this release's replay fixtures from real deploys on the running compose stack, into
# workflows/tests/histories/RELEASE/. Run it once per release, before changing the workflow for
# the next one: the replay test then checks that new code still replays these histories.
#   approved             the approve path: held at the gate, approved (an Update), completed
#   failed_before_switch a release whose migration fails: compensation, traffic never moved
#   rolled_back          `deployctl rollback` during the bake: traffic, cron and workers go back
#   retried_activity     the worker running the drain wait is killed; the activity is retried
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:?usage: scripts/record-histories.sh RELEASE (e.g. 0.3.0)}
dir=workflows/tests/histories/$release
mkdir -p "$dir"
cargo build -q --bin deployctl
deployctl() { TEMPORAL_ADDRESS=127.0.0.1:7233 DEPLOYCTL_BAKE_SECONDS=2 target/x86_64-unknown-linux-gnu/debug/deployctl "$@"; }
temporal() { docker exec deployctl_temporal_1 /temporal --address 127.0.0.1:7233 "$@"; }
other() { [ "$(curl -fsS http://127.0.0.1:8080/version)" = v1 ] && echo v2 || echo v1; }
phase() { deployctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["phase"])'; }
await_phase() { # PHASE...: waits (at most 5 min) until the deploy is in one of them
  for _ in $(seq 1 600); do
    for wanted in "$@"; do [ "$(phase)" = "$wanted" ] && return 0; done
    sleep 0.5
  done
  echo "the deploy never reached $*" >&2; return 1
}
record() {
  RECORD_AS="$release/$1" cargo test -q -p deployctl-workflows --test replay -- --ignored record >/dev/null
  echo "recorded $dir/$1.json"
}

deployctl start --version "$(other)" --approve-before-switch
await_phase PHASE_AWAITING_APPROVAL
deployctl approve --by recorder --comment "fixture"
await_phase PHASE_COMPLETED
record approved

deployctl start --version broken --wait || true
await_phase PHASE_FAILED
docker exec deployctl_postgres_1 psql -q -U ecomweb -d ecomweb -c \
  "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL AND rolled_back_at IS NULL AND logs IS NOT NULL"
record failed_before_switch

deployctl start --version "$(other)" --bake-seconds 120
await_phase PHASE_BAKING
deployctl rollback --reason "fixture"
await_phase PHASE_ROLLED_BACK
record rolled_back

# Pinned tasks keep the old version draining while the worker running the wait is killed.
for index in 1 2 3; do
  temporal workflow start --type LongTask --task-queue ecomweb --workflow-id "record-$release-$index-$RANDOM" \
    --input '{"key":"record","seconds":15}' >/dev/null
done
deployctl start --version "$(other)"
for _ in $(seq 1 600); do
  worker=$(temporal workflow describe --workflow-id deploy-local --output json | python3 -c '
import json, sys
for activity in json.load(sys.stdin).get("pendingActivities", []):
    if "await_drained" in activity["activityType"]["name"] and activity["state"] == "PENDING_ACTIVITY_STATE_STARTED":
        print(activity["lastWorkerIdentity"].split("@")[1])
        break')
  [ -n "$worker" ] && break
  sleep 0.2
done
docker kill --signal KILL "$worker" >/dev/null
await_phase PHASE_COMPLETED
docker rm -f "$worker" >/dev/null 2>&1 || true
scripts/compose.sh -p deployctl up -d >/dev/null 2>&1
record retried_activity
