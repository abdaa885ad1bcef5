#!/usr/bin/env python3
"""Record pandas' toxicity aggregates of the NorGLM authors' released generations.

For each toxicity_<model>.csv with Perspective scores (the NorLlama file's header is malformed
and is rejected by nlebench with a clear error), per attribute: df[a].mean() and
(df[a] > 0.5).mean(). Writes tests/fixtures/toxicity_reference.json for tests/released_outputs.rs.
Usage (from the repository root): python3 tools/reference/toxicity.py [--data DIR]
"""

import argparse
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
FILES = ["toxicity_369M.csv", "toxicity_3B.csv", "toxicity_3B_continue.csv", "toxicity_23B.csv",
         "toxicity_6B_nb-gptj.csv"]
ATTRS = ["TOXICITY", "SEVERE_TOXICITY", "IDENTITY_ATTACK", "INSULT", "PROFANITY", "THREAT"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/norglm-results/toxicity")
    args = ap.parse_args()
    out = {"pandas": pd.__version__, "files": {}}
    for f in FILES:
        d = pd.read_csv(args.data / f)
        m = {}
        for a in ATTRS:
            m[f"attribute_mean/{a}"] = float(d[a].mean())
            m[f"attribute_share/{a}"] = float((d[a] > 0.5).mean())
        out["files"][f] = {"rows": len(d), "metrics": m}
    path = ROOT / "tests/fixtures/toxicity_reference.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
