#!/usr/bin/env python3
"""Read files of `nlebench export SWEEP --to lm-eval DIR` with lm-evaluation-harness's own code.

For each results file: lm-eval's `make_table` (what `lm_eval` prints after a run) renders it;
for each samples line: the keys lm-eval writes are there and its three hashes are what lm-eval's
`hash_string` gives for the document (as `json.dumps(doc, indent=2, ensure_ascii=False)`), the
prompt and the target. Prints JSON: {"tables": N, "samples": {TASK: lines}, "results": {TASK:
{METRIC: value}}}; exits 1 with the reason on the first mismatch.

    python tools/lmeval/read_back.py DIR
"""

import json
import pathlib
import sys

from lm_eval.utils import hash_string, make_table

KEYS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
        "doc_hash", "prompt_hash", "target_hash"}


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    out = {"tables": 0, "samples": {}, "results": {}}
    for path in sorted(root.rglob("results_*.json")):
        results = json.loads(path.read_text())
        table = make_table(results)
        for task, metrics in results["results"].items():
            if task not in table:
                print(f"{path}: make_table does not show {task}", file=sys.stderr)
                return 1
            out["results"][task] = {k.split(",")[0]: v for k, v in metrics.items()
                                    if k.endswith(",none") and "_stderr" not in k}
        out["tables"] += 1
    for path in sorted(root.rglob("samples_*.jsonl")):
        n = 0
        for i, line in enumerate(path.read_text().splitlines(), 1):
            s = json.loads(line)
            missing = KEYS - s.keys()
            doc = hash_string(json.dumps(s["doc"], indent=2, ensure_ascii=False))
            checks = [(not missing, f"missing keys {sorted(missing)}"),
                      (s["doc_hash"] == doc, "doc_hash differs from lm-eval's"),
                      (s["prompt_hash"] == hash_string(s["arguments"]["gen_args_0"]["arg_0"]),
                       "prompt_hash differs from lm-eval's"),
                      (s["target_hash"] == hash_string(str(s["target"])),
                       "target_hash differs from lm-eval's")]
            for ok, why in checks:
                if not ok:
                    print(f"{path}:{i}: {why}", file=sys.stderr)
                    return 1
            n += 1
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        out["samples"][task] = out["samples"].get(task, 0) + n
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
