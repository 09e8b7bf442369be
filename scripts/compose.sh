#!/usr/bin/env bash
# The machine's compose tool on this project: `docker compose` (v2) where it exists, else
# `docker-compose` (v1, as Debian packages it). Always with -f compose.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  exec docker compose -f compose.yaml "$@"
fi
exec docker-compose -f compose.yaml "$@"
