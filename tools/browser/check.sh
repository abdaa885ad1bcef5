#!/usr/bin/env bash
# Browser check of the dashboard: headless Chromium (Debian's `chromium`) loads every page of a
# freshly seeded embedded store (sweeps, runs of each task kind, a failed run, imports of the
# authors' released bias files when ../shared has them, compare with its disagreements view, the
# leaderboard with and without random and partial runs, the reproduction report, lm-eval prompt
# variants' best and mean), fails on any
# console message (script errors, failed loads), and looks at every page at 1400 and 390 px as a
# person would (tools/browser/layout.py: no sideways scrolling, no cell sticking out of its
# column, no word or number broken across lines, charts with axes), saving a screenshot of each.
# It first proves it can fail: a deliberately broken column width must be caught.
#
# Usage (from the repository root, after `cargo build`):
#   tools/browser/check.sh [OUT_DIR]        # screenshots go to OUT_DIR (default ./screenshots)
# Needs: chromium (apt-get install chromium) and the Python package websocket-client.
# NLEBENCH_BIN overrides target/debug/nlebench.
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
# Run 7 fails: its dataset disappears after submission.
cp experiments/data/no-crows-pairs-mini.csv "$WORK/vanishing.csv"
sed -e 's/name = "browser"/name = "failing"/' -e "s|path:[^\"]*|path:$WORK/vanishing.csv|" \
  "$WORK/sweep.toml" | awk '/^\[\[models\]\]/{n++} n<2' > "$WORK/failing.toml"
"$BIN" submit "$WORK/failing.toml" >/dev/null
rm "$WORK/vanishing.csv"
NLEBENCH_MAX_ATTEMPTS=1 "$BIN" worker --exit-when-idle 1 >/dev/null 2>&1 || true
"$BIN" baselines import experiments/baselines/norglm-released.csv >/dev/null
# Runs 8-9: the authors' released outputs of two models, imported (CI has them).
RELEASED="$ROOT/../shared/data/norglm-results/bias"
PAGES_RELEASED=()
if [ -d "$RELEASED" ]; then
  "$BIN" import --task no-crows-pairs --model NorGPT-369M --file "$RELEASED/bias_369M.csv" >/dev/null
  "$BIN" import --task no-crows-pairs --model NorGPT-23B --file "$RELEASED/bias_23B.csv" >/dev/null
  PAGES_RELEASED=(/runs/8 "/compare?runs=8,9" "/compare?runs=8,9&diff=true")
else
  echo "note: ../shared/data/norglm-results missing: the released files' pages are not looked at"
fi
# A sweep of lm-eval prompt variants (their best and mean on the sweep page, the report and
# the leaderboard); the fixture's data files are relative to its folder, as lm-eval reads them.
cat > "$WORK/variants.toml" <<TOML
name = "variants"
tasks = ["lm-eval:nlebench_test_variant"]
lm_eval_include = ["$ROOT/tests/fixtures/lmeval-tasks"]
[[models]]
name = "tiny-a"
source = "random:norgpt-tiny@1"
[[models]]
name = "tiny-b"
source = "random:norgpt-tiny@2"
[[settings]]
name = "zero-shot"
TOML
(cd tests/fixtures/lmeval-tasks && "$BIN" run "$WORK/variants.toml" >/dev/null 2>"$WORK/variants.log") \
  || { cat "$WORK/variants.log" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --public --addr "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
failed=0
for page in "sweep-grid /sweeps/browser" "run /runs/1" "failed-run /runs/7" "compare /compare?runs=1,2" \
    "disagreements /compare?runs=1,2&diff=true" "leaderboard /leaderboard?metric=bias_paper&random=true&partial=true" \
    "report /sweeps/browser/report" "variants /sweeps/variants" "variants-report /sweeps/variants/report" \
    "variants-leaderboard /leaderboard?metric=acc&random=true"; do
  name=${page%% *}
  path=${page#* }
  log="$WORK/$name.log"
  timeout 60 "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --user-data-dir="$WORK/profile-$name" --window-size=1280,1400 \
    --enable-logging=stderr --v=0 --virtual-time-budget=3000 \
    --screenshot="$WORK/$name.png" "http://127.0.0.1:$PORT$path" 2>"$log" >/dev/null || true
  if [ ! -s "$WORK/$name.png" ]; then
    echo "FAIL $name: no screenshot" >&2; sed -n '1,20p' "$log" >&2; failed=1
  elif grep -E 'CONSOLE|Uncaught|Failed to load resource' "$log" >&2; then
    echo "FAIL $name: console messages above" >&2; failed=1
  else
    echo "ok   $name: no console messages"
  fi
done
# The compare page's significance table is in the rendered DOM.
timeout 60 "$CHROME" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --no-first-run --user-data-dir="$WORK/profile-dom" --virtual-time-budget=3000 \
  --dump-dom "http://127.0.0.1:$PORT/compare?runs=1,2" 2>/dev/null >"$WORK/compare.html" || true
if grep -q "Differences on the shared examples" "$WORK/compare.html" && grep -q "run 2 against run 1" "$WORK/compare.html" \
    && grep -q "McNemar exact" "$WORK/compare.html"; then
  echo "ok   compare: significance table rendered"
else
  echo "FAIL compare: no significance table in the rendered page" >&2; failed=1
fi
# The layout check must fail on what a person would see: a column squeezed to 4 characters.
if ! python3 -c 'import websocket' 2>/dev/null; then
  echo "FAIL layout: the Python package websocket-client is missing (pip install websocket-client)" >&2
  exit 1
fi
BROKEN='table.data td:nth-child(2), table.data th:nth-child(2) { width: 4ch !important; max-width: 4ch !important; min-width: 0 !important; white-space: normal !important; overflow-wrap: anywhere !important; word-break: break-all !important; }'
if python3 tools/browser/layout.py --chrome "$CHROME" --base "http://127.0.0.1:$PORT" --widths 1400 \
    --inject-css "$BROKEN" /sweeps/browser >"$WORK/selftest.log" 2>&1; then
  cat "$WORK/selftest.log" >&2
  echo "FAIL layout self-test: a deliberately broken column width was not caught" >&2; failed=1
elif grep -q "text broken inside a word or number" "$WORK/selftest.log"; then
  echo "ok   layout self-test: a broken column width is caught ($(grep -m1 'broken inside' "$WORK/selftest.log" | sed 's/^ *//'))"
else
  cat "$WORK/selftest.log" >&2
  echo "FAIL layout self-test: it failed, but not on the broken words" >&2; failed=1
fi
# Every page at 1400 and 390 px, with screenshots.
python3 tools/browser/layout.py --chrome "$CHROME" --base "http://127.0.0.1:$PORT" --widths 1400,390 \
  --screenshots "$OUT" \
  / /archive /sweeps/browser /sweeps/quickstart /sweeps/failing /runs/1 /runs/3 /runs/4 /runs/5 \
  /runs/6 /runs/7 "/compare?runs=1,2" "/compare?runs=1,2&diff=true" "/leaderboard?metric=bias_paper" \
  "/leaderboard?metric=bias_paper&random=true&partial=true" "/leaderboard?metric=rouge_l&random=true&partial=true" \
  /workers /baselines /sweeps/browser/report /sweeps/quickstart/report /login /nonexistent \
  /sweeps/variants /sweeps/variants/report "/leaderboard?metric=acc&random=true" \
  "${PAGES_RELEASED[@]}" || failed=1
exit $failed
