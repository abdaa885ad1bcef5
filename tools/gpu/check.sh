#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and this repository, build with `cuda`, check
# the engine on the GPU against the CPU (every fixture architecture in f32, f16 and bf16), and
# benchmark it at the NorGPT-369M and NorGPT-3B shapes (random weights): scoring sentences/s,
# generation new tokens/s at batch 1, 8 and 32, peak GPU memory, and decode throughput as a
# share of the GPU's memory bandwidth, each beside transformers (sdpa) on the same weights and
# inputs where the machine's python3 has CUDA torch and transformers; then the quickstart sweep end to end on the GPU and on the
# CPU (equal metrics). Writes the "## GPU (issue 13)" section of BENCHMARKS.md.
#
#   tools/gpu/check.sh                   build (cargo, CUDA toolkit or tools/gpu/toolkit.sh), run
#   tools/gpu/check.sh --bin-dir DIR     use DIR/nlebench-dev (and DIR/nlebench) built with `--features cuda`
#                                        elsewhere (a GPU machine without a Rust toolchain), or the
#                                        .xz files tools/gpu/pack.sh packed there
#   tools/gpu/check.sh --dry-run         print the plan; build and run nothing (no GPU needed)
#   --results DIR   JSON results and logs (default target/gpu-check)
#   --models-dir D  where the random models are written (default .nlebench/models; 3B is 12 GB)
#   --no-write      leave BENCHMARKS.md alone
#
# Each step runs even when an earlier one failed (one GPU session shows every problem); the
# exit status is that of the first failed step.
set -uo pipefail

cd "$(dirname "$0")/../.."
invocation="tools/gpu/check.sh $*"
dry=0 write=1 bin_dir="" results="target/gpu-check" models=".nlebench/models"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --no-write) write=0 ;;
        --bin-dir) bin_dir="$2"; shift ;;
        --results) results="$2"; shift ;;
        --models-dir) models="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

status=0
step() { echo; echo "== $*"; }
run() {
    # run NAME CMD...: print the command; in a dry run only that; else run it, keep its log.
    local name="$1"; shift
    echo "+ $*"
    [ "$dry" = 1 ] && return 0
    local t0=$SECONDS
    "$@" 2>&1 | tee "$results/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "($name: exit $rc, $((SECONDS - t0)) s)"
    if [ "$rc" != 0 ] && [ "$status" = 0 ]; then status=$rc; fi
    return "$rc"
}

if [ "$dry" = 0 ]; then
    mkdir -p "$results" "$models"
    echo "$invocation" > "$results/command.txt"
    echo "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores" > "$results/host.txt"
fi
start=$SECONDS

step "GPU"
if [ "$dry" = 1 ]; then
    echo "+ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader"
elif ! nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$results/gpu.txt"; then
    echo "check.sh: no NVIDIA GPU answers (nvidia-smi failed); this check needs one" >&2
    exit 1
fi

step "Build with --features cuda"
if [ -n "$bin_dir" ]; then
    # A folder of tools/gpu/pack.sh: xz-compressed binaries with their sums, unpacked here.
    if [ ! -e "$bin_dir/nlebench-dev" ] && [ -e "$bin_dir/nlebench-dev.xz" ]; then
        unpacked="$results/bin"
        echo "+ unpack $bin_dir/*.xz into $unpacked and check their sums"
        if [ "$dry" = 0 ]; then
            mkdir -p "$unpacked"
            for bin in nlebench nlebench-dev; do
                [ -e "$bin_dir/$bin.xz" ] || continue
                xz -dc "$bin_dir/$bin.xz" > "$unpacked/$bin" && chmod +x "$unpacked/$bin"
                cp "$bin_dir/$bin.sha256" "$unpacked/"
                (cd "$unpacked" && sha256sum -c --quiet "$bin.sha256") || { echo "check.sh: $bin_dir/$bin.xz does not unpack to the binary packed" >&2; exit 1; }
            done
        fi
        bin_dir="$unpacked"
    fi
    dev="$bin_dir/nlebench-dev"
    echo "using $dev (built elsewhere with --features cuda)"
    [ "$dry" = 1 ] || [ -x "$dev" ] || { echo "check.sh: $dev is missing" >&2; exit 1; }
else
    dev="target/release/nlebench-dev"
    if ! command -v nvcc >/dev/null; then
        echo "+ source tools/gpu/toolkit.sh   # no nvcc on the PATH: CUDA 13.0 from PyPI"
        # shellcheck source=toolkit.sh
        [ "$dry" = 1 ] || source tools/gpu/toolkit.sh
    fi
    run build cargo build --release --features cuda -p nlebench -p nlebench-devtools
fi
# The CUDA libraries the binary links (cuBLAS, cuRAND, NVRTC, cudart) where the loader does
# not find them: a toolkit's lib64, or the NVIDIA wheels of a Python environment.
if [ "$dry" = 0 ] && ldd "$dev" | grep -q "not found"; then
    for lib in $(ldd "$dev" | awk '/not found/ {print $1}'); do
        found=$(find /usr/local /opt /usr/lib "$HOME/.cache/nlebench" -name "$lib" -not -path "*stubs*" 2>/dev/null | head -1)
        [ -n "$found" ] && LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH
    ldd "$dev" | grep "not found" && echo "check.sh: libraries above are missing" >&2
fi

step "Parity: the engine on cuda:0 against the CPU and transformers' logits"
run parity "$dev" parity --device cuda:0 --json "$results/parity.json"

step "Memory bandwidth (device-to-device copy, bytes read + written)"
bw=""
if [ "$dry" = 1 ]; then
    echo "+ python3 (torch): time a 4 GiB device-to-device copy"
elif python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    bw=$(python3 - <<'EOF'
import torch
x = torch.empty(1 << 30, dtype=torch.float32, device="cuda")
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
torch.cuda.synchronize()
a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
a.record()
for _ in range(10):
    y.copy_(x)
b.record()
torch.cuda.synchronize()
print(f"{2 * x.numel() * 4 * 10 / (a.elapsed_time(b) / 1e3) / 1e9:.0f}")
EOF
)
    echo "$bw GB/s" | tee "$results/bandwidth.txt"
else
    echo "no python3 with CUDA torch: decode's bandwidth share is not computed"
fi

# transformers on the same GPU, weights and inputs (the machine's own PyTorch and transformers).
reference=0
if [ "$dry" = 1 ] || python3 -c "import torch, transformers; assert torch.cuda.is_available()" 2>/dev/null; then
    reference=1
else
    echo "no python3 with CUDA torch and transformers: the benchmark has no transformers columns"
fi
for model in norgpt-369m norgpt-3b; do
    for dtype in f32 bf16; do
        step "Benchmark $model $dtype on cuda:0"
        run "bench-$model-$dtype" "$dev" bench device --model "random:$model@1" --models-dir "$models" \
            --device cuda:0 --dtype "$dtype" --batch-sizes 1,8,32 --repeats 2 \
            ${bw:+--bandwidth-gbs "$bw"} --workload-out "$results/workload-$model-$dtype.json" --json
        [ "$dry" = 1 ] || tail -1 "$results/bench-$model-$dtype.log" > "$results/bench-$model-$dtype.json"
        if [ "$reference" = 1 ]; then
            step "transformers (sdpa) on the same workload: $model $dtype"
            run "reference-$model-$dtype" python3 tools/gpu/transformers_reference.py \
                "$results/workload-$model-$dtype.json" --device cuda --out "$results/reference-$model-$dtype.json"
        fi
    done
done

step "End to end: the quickstart sweep on cuda:0 and on the CPU (metrics must be equal)"
nle="$(dirname "$dev")/nlebench"
if [ "$dry" = 0 ] && [ ! -x "$nle" ]; then
    echo "no $nle next to nlebench-dev: skipped"
else
    for d in cuda:0 cpu; do
        n=${d%%:*} e2e="$results/e2e-${d%%:*}"
        [ "$dry" = 1 ] || mkdir -p "$e2e"
        store=(env NLEBENCH_DATA_DIR="$e2e" NLEBENCH_DATABASE_URL="sqlite://$e2e/nlebench.sqlite"
               NLEBENCH_QUEUE_URL="sqlite://$e2e/queue.sqlite" "$nle")
        run "e2e-$n" "${store[@]}" run experiments/sweeps/quickstart.toml --device "$d"
        run "e2e-$n-export" "${store[@]}" export quickstart --format json -o "$results/metrics-$n.json"
    done
    if [ "$dry" = 1 ]; then
        echo "+ compare metrics-cuda.json with metrics-cpu.json"
    else
        run e2e-compare python3 tools/gpu/same_metrics.py "$results"
    fi
fi

step "Report"
[ "$dry" = 1 ] || echo "$((SECONDS - start))" > "$results/seconds.txt"
if [ "$write" = 1 ]; then
    run report python3 tools/gpu/report.py "$results"
fi
echo "check.sh: $((SECONDS - start)) s, exit $status"
exit "$status"
