#!/usr/bin/env bash
# Browser check of the dashboard: headless Chromium (Debian's `chromium`) loads the sweep grid,
# run, compare and leaderboard pages of a freshly seeded embedded store, fails on any console
# message (script errors, failed loads), and saves screenshots. Then every page, at 1024 and
# 1400 px, must fit the window without scrolling sideways (tools/browser/layout.py, which needs
# the Python package websocket-client).
#
# Usage (from the repository root, after `cargo build`):
#   tools/browser/check.sh [OUT_DIR]        # screenshots go to OUT_DIR (default ./screenshots)
# Needs: chromium (apt-get install chromium). NLEBENCH_BIN overrides target/debug/nlebench.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${NLEBENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/nlebench}
OUT=$(realpath -m "${1:-screenshots}")
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
  echo "browser check: chromium not found (apt-get install chromium)" >&2
  exit 1
fi
[ -x "$BIN" ] || { echo "browser check: $BIN missing; run cargo build first" >&2; exit 1; }
mkdir -p "$OUT"
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
export NLEBENCH_DATA_DIR="$WORK/data" NLEBENCH_DATABASE_URL="sqlite://$WORK/data/nlebench.sqlite" \
  NLEBENCH_QUEUE_URL="sqlite://$WORK/data/queue.sqlite" NLEBENCH_TASKS_DIR="$ROOT/experiments/tasks" \
  NLEBENCH_CATALOG="$ROOT/experiments/models/catalog.toml" HF_HUB_OFFLINE=1 NO_COLOR=1
cat > "$WORK/sweep.toml" <<TOML
name = "browser"
tasks = ["no-crows-pairs"]
[datasets]
no-crows-pairs = "path:$ROOT/experiments/data/no-crows-pairs-mini.csv"
[[models]]
name = "NorGPT-369M"
source = "random:norgpt-tiny@1"
[[models]]
name = "tiny-b"
source = "random:norgpt-tiny@2"
[[settings]]
name = "ten"
limit = 10
TOML
"$BIN" run "$WORK/sweep.toml" >/dev/null
# Runs 3-6: one of each task kind.
"$BIN" run experiments/sweeps/quickstart.toml >/dev/null 2>"$WORK/quickstart.log" \
  || { cat "$WORK/quickstart.log" >&2; exit 1; }
"$BIN" baselines import experiments/baselines/norglm-released.csv >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --public --addr "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
failed=0
for page in "sweep-grid /sweeps/browser" "run /runs/1" "compare /compare?runs=1,2" "leaderboard /leaderboard?metric=bias_paper" "report /sweeps/browser/report"; do
  name=${page%% *}
  path=${page#* }
  log="$WORK/$name.log"
  timeout 60 "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$WORK/profile-$name" --window-size=1280,1400 \
    --enable-logging=stderr --v=0 --virtual-time-budget=3000 \
    --screenshot="$OUT/$name.png" "http://127.0.0.1:$PORT$path" 2>"$log" >/dev/null || true
  if [ ! -s "$OUT/$name.png" ]; then
    echo "FAIL $name: no screenshot" >&2; sed -n '1,20p' "$log" >&2; failed=1
  elif grep -E 'CONSOLE|Uncaught|Failed to load resource' "$log" >&2; then
    echo "FAIL $name: console messages above" >&2; failed=1
  else
    echo "ok   $name: $OUT/$name.png"
  fi
done
# The compare page's significance table is in the rendered DOM.
timeout 60 "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --no-first-run --user-data-dir="$WORK/profile-dom" --virtual-time-budget=3000 \
  --dump-dom "http://127.0.0.1:$PORT/compare?runs=1,2" 2>/dev/null >"$WORK/compare.html" || true
if grep -q "Significance against run 1" "$WORK/compare.html" && grep -q "McNemar exact" "$WORK/compare.html"; then
  echo "ok   compare: significance table rendered"
else
  echo "FAIL compare: no significance table in the rendered page" >&2; failed=1
fi
# Every page fits 1024 and 1400 px without sideways scrolling.
if python3 -c 'import websocket' 2>/dev/null; then
  python3 tools/browser/layout.py --chrome "$CHROME" --base "http://127.0.0.1:$PORT" --widths 1024,1400 \
    / /archive /sweeps/browser /sweeps/quickstart /runs/1 /runs/3 /runs/4 /runs/5 /runs/6 \
    "/compare?runs=1,2" "/leaderboard?metric=bias_paper" /workers /baselines \
    /sweeps/browser/report /login /nonexistent || failed=1
else
  echo "FAIL layout: the Python package websocket-client is missing (pip install websocket-client)" >&2
  failed=1
fi
exit $failed
