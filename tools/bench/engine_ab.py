#!/usr/bin/env python3
"""A/B of two nlebench builds on the engine benchmark's workload: the same model and token ids
(bench-out/ from engine_reference.py), alternating processes, same thread count; prints the
medians, the ratio B/A and whether the outputs are identical (bit for bit: JSON numbers
round-trip). Used to check that a refactoring
changes no engine figure beyond noise (BENCHMARKS.md says where and when).

  python tools/bench/engine_ab.py --a "OLD/nlebench bench engine" \
      --b "target/release/nlebench-dev bench engine" [--rounds 3] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str]) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS="2", NLEBENCH_DEVICE="cpu")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="command of build A up to its arguments")
    ap.add_argument("--b", required=True, help="command of build B up to its arguments")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--phases", default="ppl,gen", help="comma-separated phases to run")
    args = ap.parse_args()
    model = args.out / "norgpt-369m-random"
    inputs = args.out / "bench_inputs.json"
    for phase in args.phases.split(","):
        rates: dict[str, list[float]] = {"A": [], "B": []}
        outputs: dict[str, object] = {}
        for _ in range(args.rounds):
            for name, base in [("A", args.a), ("B", args.b)]:
                r = run(shlex.split(base) + ["--model", str(model), "--inputs", str(inputs), "--phase", phase,
                                             "--repeats", str(args.repeats), "--json"])
                rates[name] += r["rates"]
                outputs[name] = r["output"]
        a, b = statistics.median(rates["A"]), statistics.median(rates["B"])
        same = "identical" if outputs["A"] == outputs["B"] else "DIFFERENT"
        if same != "identical" and phase == "ppl":
            rel = max(abs(x - y) / abs(y) for x, y in zip(outputs["A"], outputs["B"]))
            same += f" (largest relative difference {rel:.1e})"
        print(f"{phase}: A {a:.2f} [{min(rates['A']):.2f}-{max(rates['A']):.2f}] "
              f"B {b:.2f} [{min(rates['B']):.2f}-{max(rates['B']):.2f}] B/A {b / a:.3f}; outputs {same}")


if __name__ == "__main__":
    main()
