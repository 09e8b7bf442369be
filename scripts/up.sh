#!/usr/bin/env bash
# Brings the stack up from nothing: images built locally, .env.api from the example, every
# service healthy. `--fresh` first removes the stack and its volumes (a v1 stack, empty DB).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env.api ] || cp .env.api.example .env.api
# Compose reads the image versions from .env, a link into ./state: the workers may write there,
# and nowhere else in the project.
mkdir -p state run/haproxy
[ -f state/images.env ] || { if [ -f .env ] && [ ! -L .env ]; then mv .env state/images.env; else cp .env.example state/images.env; fi; }
ln -sfn state/images.env .env
[ -f state/environments.toml ] || printf '%s\n' \
  "# The workers' environments beyond the embedded \`local\` ([environments.NAME] tables, the keys of" \
  "# activities/src/environments.toml). Read again on each deploy; check one with" \
  "# \`deployctl --env NAME --config state/environments.toml config\`." > state/environments.toml
scripts/build-images.sh
# Removes every container of the stack, and whatever else sits on its networks, before
# `compose down`: the workers create containers themselves (a deploy may still be rolling them
# as we start), and a network with a live endpoint cannot be removed.
remove_stack() {
  local attempt ids network
  for attempt in 1 2 3 4 5; do
    ids=$(docker ps -aq --filter label=com.docker.compose.project=deployctl)
    for network in $(docker network ls -q --filter label=com.docker.compose.project=deployctl); do
      ids="$ids $(docker network inspect -f '{{range $id, $e := .Containers}}{{$id}} {{end}}' "$network")"
    done
    [ -z "${ids//[[:space:]]/}" ] && break
    # Word splitting wanted: a list of ids.
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || true
  done
  # An endpoint left behind by a container that is already gone.
  for network in $(docker network ls -q --filter label=com.docker.compose.project=deployctl); do
    for endpoint in $(docker network inspect -f '{{range $id, $e := .Containers}}{{$e.Name}} {{end}}' "$network"); do
      docker network disconnect -f "$network" "$endpoint" >/dev/null 2>&1 || true
    done
  done
  scripts/compose.sh down --volumes --remove-orphans --timeout 5
}
if [ "${1:-}" = --fresh ]; then
  remove_stack
  # HAProxy's saved server state lives beside its socket, in ./run/haproxy: a fresh stack
  # starts from haproxy.cfg (blue live), not from the last deploy.
  rm -f run/haproxy/server-state
  cp .env.example .env
fi
scripts/compose.sh config --quiet
scripts/compose.sh up -d
echo "waiting for every service to be healthy"
for _ in $(seq 1 240); do
  unhealthy=$(docker ps -a --filter label=com.docker.compose.project=deployctl --format '{{.Names}} {{.Status}}' | grep -v '(healthy)' || true)
  if [ -z "$unhealthy" ] && curl -fsS http://127.0.0.1:8080/version >/dev/null 2>&1; then
    echo "stack healthy"; exit 0
  fi
  sleep 1
done
echo "stack not healthy after 240 s:" >&2
echo "$unhealthy" >&2
exit 1
