#!/usr/bin/env bash
# CUDA 13.0 toolkit from PyPI for building the `cuda` feature on a machine without one (CI):
# nvcc (with NVVM and the CRT headers), cudart, cuBLAS, cuRAND and NVRTC wheels into DIR, unversioned link names, and a
# link-only libcuda stub (libcuda comes with the NVIDIA driver, which a build machine need not
# have; the stub is never loaded: a binary finds the driver's libcuda.so.1 where it runs).
#
# 13.0 on purpose: candle loads its kernels as PTX, and a driver cannot load PTX from a newer
# CUDA than its own; 13.0 PTX loads on every CUDA 13 driver (R580 or later).
#
#   source tools/gpu/toolkit.sh [DIR]    # default DIR: ~/.cache/nlebench/cuda-13.0
#   cargo build --release --features cuda


CUDA_DIR="${1:-${NLEBENCH_CUDA_DIR:-$HOME/.cache/nlebench/cuda-13.0}}"
PYTHON="${PYTHON:-python3}"

# One pip call: with --target, a second call would not add to the `nvidia` folder the first made.
if [ ! -x "$CUDA_DIR/site/nvidia/cu13/bin/nvcc" ] || [ ! -d "$CUDA_DIR/site/nvidia/cu13/nvvm" ]; then
    rm -rf "$CUDA_DIR/site"
    echo "toolkit: installing the CUDA 13.0 wheels into $CUDA_DIR" >&2
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps --target "$CUDA_DIR/site" \
        nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
        nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
fi
root="$CUDA_DIR/site/nvidia/cu13"

# Unversioned names for the linker (the wheels ship only libX.so.N) and the driver stub.
mkdir -p "$CUDA_DIR/link"
for lib in cudart cublas cublasLt curand nvrtc; do
    so=$(ls "$root/lib/lib$lib.so."* 2>/dev/null | head -1)
    [ -n "$so" ] || { echo "toolkit: lib$lib.so.* is missing under $root/lib" >&2; return 1 2>/dev/null || exit 1; }
    ln -sf "$so" "$CUDA_DIR/link/lib$lib.so"
done
if [ ! -f "$CUDA_DIR/link/libcuda.so" ]; then
    # Every driver function cudarc declares, as an empty function in a library named like the
    # driver's, so that the final link resolves; at run time the real driver is loaded instead.
    sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys 2>/dev/null | head -1)
    if [ -z "$sys" ]; then
        echo "toolkit: cudarc's sources are not fetched yet; run \`cargo fetch\` first" >&2
        return 1 2>/dev/null || exit 1
    fi
    grep -rhoE '^pub unsafe fn cu[A-Za-z0-9_]+' "$sys" | sed 's/pub unsafe fn //' | sort -u |
        sed 's/.*/void &(void) {}/' > "$CUDA_DIR/link/cuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_DIR/link/libcuda.so" "$CUDA_DIR/link/cuda_stub.c"
fi

export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
export PATH="$root/bin:$PATH"
export CUDARC_CUDA_VERSION=13000
# No GPU on a build machine to ask: build for Hopper (sm_90) unless told otherwise.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$CUDA_DIR/link:$root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$CUDA_DIR/link"
echo "toolkit: $(nvcc --version | tail -2 | head -1); compute capability $CUDA_COMPUTE_CAP" >&2
