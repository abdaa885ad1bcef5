#!/usr/bin/env bash
# Build nlebench's images with podman and no image registry (air-gapped sites, or machines
# like CI's that reach only a Debian mirror): a Debian bookworm base from debootstrap, then
#   localhost/nlebench-debian:bookworm   the base (kept; --rebuild-base makes it again)
#   localhost/nlebench-postgres:15       stands in for postgres:16 (postgres.Containerfile)
#   localhost/nlebench-redis:7           stands in for redis:7 (redis.Containerfile)
#   localhost/nlebench:latest            deploy/Dockerfile's `prebuilt` target with BINARY
# Needs root (debootstrap), podman, runc and debootstrap; deploy/podman/compose.sh starts them.
#
# usage: deploy/podman/build-images.sh [--binary PATH] [--mirror URL] [--rebuild-base]
#   --binary   the nlebench binary to put in the image (default target/release/nlebench;
#              it must run on Debian bookworm's glibc)
#   --mirror   the Debian mirror for debootstrap and apt (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=target/release/nlebench
mirror=http://deb.debian.org/debian
rebuild_base=false
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --rebuild-base) rebuild_base=true; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || {
    echo "build-images.sh: $tool is not installed; fix: apt-get install podman runc debootstrap" >&2
    exit 1
  }
done
[ -x "$binary" ] || {
  echo "build-images.sh: no binary at $binary; fix: cargo build --release --bin nlebench, or pass --binary PATH" >&2
  exit 1
}
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
base=localhost/nlebench-debian:bookworm
build=(podman build --pull=never --network=host --build-arg "BASE=$base")

if $rebuild_base || ! podman image exists "$base"; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  echo "build-images: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  tar -C "$rootfs" -c . | podman import --quiet - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

echo "build-images: localhost/nlebench-postgres:15, localhost/nlebench-redis:7"
"${build[@]}" --quiet -t localhost/nlebench-postgres:15 -f deploy/podman/postgres.Containerfile deploy/podman >/dev/null
"${build[@]}" --quiet -t localhost/nlebench-redis:7 -f deploy/podman/redis.Containerfile deploy/podman >/dev/null

# The prebuilt target's context: the binary and the experiments folder, nothing else.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/nlebench"
cp -r experiments "$context/experiments"
echo "build-images: localhost/nlebench:latest with $binary"
"${build[@]}" --quiet --target prebuilt -t localhost/nlebench:latest -f deploy/Dockerfile "$context" >/dev/null
podman images --filter reference='localhost/nlebench*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
