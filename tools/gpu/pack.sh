#!/usr/bin/env bash
# Build nlebench and nlebench-dev with `--features cuda` on this machine (no GPU needed: the
# CUDA 13.0 wheels of tools/gpu/toolkit.sh and its link-only libcuda stub) and pack them small
# for a GPU machine without a Rust toolchain or network: stripped, xz-compressed, with their
# SHA-256 sums, in one folder that travels with the working tree (at most 64 MiB).
#
#   tools/gpu/pack.sh [--out DIR]     # default DIR: target/gpu-pack
#
# On the GPU machine: tools/gpu/check.sh --bin-dir DIR (it unpacks the .xz files itself).
set -euo pipefail
cd "$(dirname "$0")/../.."

out="target/gpu-pack"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "pack.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for tool in xz strip sha256sum; do
    command -v "$tool" >/dev/null || { echo "pack.sh: $tool is not installed; fix: apt-get install xz-utils binutils coreutils" >&2; exit 1; }
done

# shellcheck source=toolkit.sh
source tools/gpu/toolkit.sh
cargo build --release --locked --features cuda -p nlebench -p nlebench-devtools --target-dir target/cuda

rm -rf "$out"
mkdir -p "$out"
for bin in nlebench nlebench-dev; do
    strip -o "$out/$bin" "target/cuda/release/$bin"
    (cd "$out" && sha256sum "$bin" > "$bin.sha256")
    xz -9 -T0 "$out/$bin"
done
size=$(du -sm "$out" | cut -f1)
echo "pack.sh: $out holds $(ls "$out" | tr '\n' ' ')($size MiB)"
if [ "$size" -gt 64 ]; then
    echo "pack.sh: $out is $size MiB, over the 64 MiB a working tree may carry to the GPU machine" >&2
    exit 1
fi
