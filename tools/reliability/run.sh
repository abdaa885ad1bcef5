#!/usr/bin/env bash
# Run the fault-injection suite (tests/faults.rs) against throwaway PostgreSQL and Redis, and
# the chaos soak (tests/soak.rs) in podman containers, and write RELIABILITY.md from the
# figures each scenario reports. Usage: tools/reliability/run.sh (as root, with podman, runc and
# debootstrap; NLEBENCH_SOAK_SECS=1800 for the chaos soak's 30-minute row; 180 s by default, as
# in CI)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${NLEBENCH_TEST_DATABASE_URL:-}" ] || [ -z "${NLEBENCH_TEST_REDIS_URL:-}" ]; then
  source .ci/services.sh
fi
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: the chaos soak runs in containers and $tool is not installed; fix: apt-get install podman runc debootstrap" >&2
    exit 1
  }
done
export NLEBENCH_SOAK_SECS=${NLEBENCH_SOAK_SECS:-180} NLEBENCH_TEST_CONTAINERS=1
# The commit measured is the one built now (work may go on while the scenarios run).
commit=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet HEAD -- . ':!RELIABILITY.md' || echo ' (with uncommitted changes)')
rows=$(mktemp)
NLEBENCH_RELIABILITY_OUT="$rows" \
  cargo test --locked -p nlebench-tests --test end_to_end -- faults:: soak:: --test-threads=1

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# Reliability"
  echo
  echo "What happens to a sweep under faults, measured by \`tests/faults.rs\` (fixed seed $(sed -n 's/^const SEED: u64 = \([0-9]*\);/\1/p' tests/faults.rs))"
  echo "against real PostgreSQL and Redis on loopback, and by the chaos soak of \`tests/soak.rs\` (fixed seed"
  echo "$(sed -n 's/^const SEED: u64 = \([0-9]*\);/\1/p' tests/soak.rs)) in podman containers. Written by \`tools/reliability/run.sh\`;"
  echo "do not edit by hand."
  echo
  echo "- Commit: \`$commit\`$dirty, $(date -u +%Y-%m-%d)"
  echo "- Machine: ${cpu}, $(nproc) cores"
  echo "- Workers: separate \`nlebench worker\` processes, heartbeat 1 s, 2 missed heartbeats, reconciler every 2 s,"
  echo "  store outage budget 120 s (default); a worker that dies is started again under its name, as a service manager would"
  echo "- Chaos soak: PostgreSQL 15, Redis 7 and four workers in podman $(podman --version | cut -d' ' -f3) containers (the images of"
  echo "  \`deploy/podman/build-images.sh\`) on a container network of their own, each worker's data on a 64 MiB tmpfs of its"
  echo "  own; the same heartbeat and reconciler settings; sweeps submitted from the host through published ports"
  echo
  echo "| scenario | faults injected | jobs | runs | samples lost | duplicates | time to recover | workers that exited |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$rows"
  echo
  echo "*Samples lost*: samples missing from runs that ended done (each done run must have all). *Duplicates*:"
  echo "samples stored twice for one (run, example) plus runs computed twice for one fingerprint. *Time to recover*:"
  echo "from the end of the fault (the last kill, the flush, the restart, PostgreSQL reachable again, the retry, the"
  echo "start of the workers) until every run of the sweep was in a terminal state. Every scenario also asserts that"
  echo "each run ended in exactly one terminal state and that no job of a done run is left unfinished."
  echo "*Workers that exited*: worker processes that ended by themselves (the poison job aborts them) and were"
  echo "started again by the test; workers the test kills are started again at once and not counted here."
  echo "*Chaos soak*: \`NLEBENCH_SOAK_SECS=$NLEBENCH_SOAK_SECS tools/reliability/run.sh\`; its faults are container operations"
  echo "(\`podman kill -s KILL\` of a worker, then \`podman start\`; \`podman restart -t 0\` of Redis, which keeps nothing, and of"
  echo "PostgreSQL, which recovers from its write-ahead log; \`podman network disconnect\` of a worker for 20 s; every"
  echo "worker's tmpfs filled for 20 s). Its time to recover runs from the end of the stream of submits and faults until"
  echo "every run of every sweep was terminal; it includes computing the sweeps still cancelled when the stream ends, which"
  echo "are retried then. The store's own disk filling up, and a model cache left half written, are tested in"
  echo "\`tests/disk_full.rs\`."
} > RELIABILITY.md
rm -f "$rows"
echo "wrote RELIABILITY.md"
