#!/usr/bin/env bash
# The seed's manual deploy (../shared/seed/ARCHITECTURE.md, "Deployment Process") as a shell
# script on this repository's stack, so that the benchmark measures it beside deployctl, in the
# same run and under the same load. It does what the seed's runbook says, no more:
#   1. compose up the idle colour on the new image (it runs its migrations as it starts);
#   2. wait until Docker calls it healthy (the seed's operator watches the logs);
#   3. edit haproxy.cfg so that the new colour is the enabled server, and reload HAProxy;
#   4. compose up cron and worker on the new image;
#   5. compose up the old colour on the new image.
# Two things this stack needs that the seed's does not, done as an operator would have to:
# HAProxy's saved server state is removed before the reload (otherwise the reload restores the
# old colour: `load-server-state-from-file`), and the worker pool's new Worker Deployment
# version is made Current (otherwise app workflows wait for the old version's gone workers).
#
# Usage: bench/manual-deploy.sh VERSION IDLE_COLOUR (blue|green). Prints one line per step edge,
# "STEP <name> <start|end> <unix ms>", which the benchmark reads. Edits haproxy.cfg in place
# (the container binds the file itself, so the inode must stay); bench/run.sh restores it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1 idle=$2
image=ecomweb-api:$version
case $idle in
  blue) old=green ;;
  green) old=blue ;;
  *) echo "usage: $0 VERSION blue|green" >&2; exit 2 ;;
esac
docker image inspect "$image" >/dev/null 2>&1 || { echo "no image $image" >&2; exit 2; }
compose() { scripts/compose.sh -p deployctl "$@"; }
mark() { echo "STEP $1 $2 $(date +%s%3N)"; }
colour_variable() { echo "API_${1^^}_IMAGE"; }

mark "start idle colour" start
export "$(colour_variable "$idle")=$image"
compose up -d "ecomweb_api_$idle" 2>/dev/null
mark "start idle colour" end

mark "await health" start
for _ in $(seq 1 600); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "ecomweb_api_$idle")" = healthy ] && break
  sleep 0.2
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "ecomweb_api_$idle")" = healthy ] || {
  echo "ecomweb_api_$idle never became healthy" >&2; exit 1; }
mark "await health" end

mark "switch traffic" start
config=haproxy/haproxy.cfg
edited=$(sed -E \
  -e "s/^( *server $idle .*) disabled$/\1/" \
  -e "s/^( *server $old [^#]*check)$/\1 disabled/" "$config")
printf '%s\n' "$edited" > "$config"
rm -f run/haproxy/server-state
compose kill -s SIGUSR2 haproxy 2>/dev/null
mark "switch traffic" end

mark "roll cron and workers" start
export CRON_IMAGE=$image WORKER_IMAGE=$image
compose up -d ecomweb_cron ecomweb_worker 2>/dev/null
# The new workers' version exists once one of them polls.
for attempt in $(seq 1 100); do
  docker exec deployctl_temporal_1 /temporal worker deployment set-current-version \
    --deployment-name ecomweb-local --build-id "$version" --yes --address 127.0.0.1:7233 \
    >/dev/null 2>&1 && break
  [ "$attempt" = 100 ] && { echo "version $version never became Current" >&2; exit 1; }
  sleep 0.2
done
mark "roll cron and workers" end

mark "update old colour" start
export "$(colour_variable "$old")=$image"
compose up -d "ecomweb_api_$old" 2>/dev/null
mark "update old colour" end

# What runs is what Compose's env file says, as after a deploy by deployctl.
for variable in API_BLUE_IMAGE API_GREEN_IMAGE CRON_IMAGE WORKER_IMAGE; do
  sed -i -E "s|^$variable=.*|$variable=$image|" state/images.env
done
