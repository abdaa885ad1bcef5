#!/usr/bin/env bash
# podman-compose with deploy/docker-compose.yml and this folder's compose.yml (local images,
# host networking, two workers) and containers.conf. Arguments go to podman-compose, e.g.
#   deploy/podman/compose.sh up -d
#   deploy/podman/compose.sh run --rm submit experiments/sweeps/quickstart.toml
#   deploy/podman/compose.sh down -v
# PODMAN_COMPOSE names the podman-compose program (1.1 or newer; default: podman-compose).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
exec "${PODMAN_COMPOSE:-podman-compose}" -f "$here/../docker-compose.yml" -f "$here/compose.yml" "$@"
