#!/usr/bin/env python3
"""The f32 matrix-product rate of nlebench's kernels against MKL (torch's `a @ b`) on this
machine, at the row counts the engine meets: 1–16 rows (decoding steps), 64, 400 (a scoring
batch) and 1,600, for a 1024 × 4096 weight (NorGPT-369M's MLP).

For each size it alternates, each in a fresh process with 2 threads:
`nlebench-dev bench gemm --kernel packed` (the linear layers' kernels over a weight packed
beforehand), `--kernel candle` (candle's matmul, i.e. the `gemm` crate, which attention runs) and
torch; then writes the medians and the ratios to BENCHMARKS.md (section "GEMM").

Usage (from the repository root; needs a venv with torch):
  cargo build --release -p nlebench-devtools
  python tools/bench/gemm_reference.py [--rounds 3] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import ROOT, cpu_model, write_section  # noqa: E402 (tools/bench is on sys.path)

SIZES = [1, 4, 16, 64, 400, 1600]
K, N = 1024, 4096
ENV = dict(os.environ, RAYON_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")


def torch_rate(m: int, repeats: int) -> float:
    """Median GFLOP/s of torch's `a @ b` (one warm-up), in this process."""
    import torch

    torch.set_num_threads(2)
    a, b = torch.randn(m, K), torch.randn(K, N)
    a @ b
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        rates.append(2 * m * K * N / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternating process triples per size")
    ap.add_argument("--repeats", type=int, default=5, help="timed products per process")
    ap.add_argument("--binary", default=str(ROOT / "target/release/nlebench-dev"))
    ap.add_argument("--measure-torch", type=int, metavar="M", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_torch:
        print(json.dumps({"median_gflops": torch_rate(args.measure_torch, args.repeats)}))
        return
    rows, kernels = [], ""
    for m in SIZES:
        got = {"packed": [], "candle": [], "torch": []}
        for _ in range(args.rounds):
            for kernel in ("packed", "candle"):
                r = run([args.binary, "bench", "gemm", "--m", str(m), "--k", str(K), "--n", str(N),
                         "--repeats", str(args.repeats), "--kernel", kernel, "--json"])
                got[kernel].append(r["median_gflops"])
                kernels = r["gemm_kernels"]
            r = run([sys.executable, __file__, "--measure-torch", str(m), "--repeats", str(args.repeats)])
            got["torch"].append(r["median_gflops"])
        med = {k: statistics.median(v) for k, v in got.items()}
        print(f"m={m}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()), flush=True)
        rows.append((m, med, got))
    import torch

    lines = [
        "## GEMM: the packed kernels, gemm and MKL (issue 12)",
        "",
        f"Measured on {cpu_model()} ({os.cpu_count()} cores), 2 threads for all, f32, "
        f"`[m, {K}] × [{K}, {N}]`; torch {torch.__version__} (MKL). {args.rounds} alternating "
        f"process triples per size × {args.repeats} timed products each (after one warm-up); the "
        "median over all, the range in brackets. Kernels: " + kernels + ".",
        "",
        f"Command: `cargo build --release -p nlebench-devtools && python tools/bench/gemm_reference.py "
        f"--rounds {args.rounds} --repeats {args.repeats}`",
        "",
        "| rows m | packed (linear layers) GFLOP/s | gemm (candle's matmul) GFLOP/s | MKL GFLOP/s | packed / MKL | gemm / MKL |",
        "|---|---|---|---|---|---|",
    ]
    for m, med, got in rows:
        rng = {k: f"{med[k]:.1f} [{min(v):.1f}–{max(v):.1f}]" for k, v in got.items()}
        lines.append(
            f"| {m} | {rng['packed']} | {rng['candle']} | {rng['torch']} | "
            f"{med['packed'] / med['torch']:.2f}× | {med['candle'] / med['torch']:.2f}× |"
        )
    write_section("GEMM: the packed kernels, gemm and MKL", "\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
