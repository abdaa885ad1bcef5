"""Whether the quickstart sweep gave the same metrics on the GPU and on the CPU (tools/gpu/check.sh).

    python3 tools/gpu/same_metrics.py RESULTS_DIR   # reads metrics-cuda.json and metrics-cpu.json
"""

import json
import sys
from pathlib import Path


def values(path: Path) -> list:
    """Each metric row of `nlebench export --format json` as (task, metric, value, interval, n)."""
    return [(m["task"], m["metric"], m["value"], m["ci_low"], m["ci_high"], m["n"])
            for m in json.loads(path.read_text())]


def main() -> None:
    results = Path(sys.argv[1])
    gpu, cpu = values(results / "metrics-cuda.json"), values(results / "metrics-cpu.json")
    same = sum(a == b for a, b in zip(gpu, cpu)) if len(gpu) == len(cpu) else 0
    print(f"{same} of {len(cpu)} metric values (with intervals) equal on cuda:0 and the CPU")
    for a, b in zip(gpu, cpu):
        if a != b:
            print(f"  cuda:0 {a}\n  cpu    {b}")
    (results / "e2e.txt").write_text(f"{same} of {len(cpu)}\n")
    sys.exit(0 if gpu == cpu else 1)


if __name__ == "__main__":
    main()
