#!/usr/bin/env python3
"""Record reference bias shares of the NorGLM authors' released per-pair perplexities.

Reads ../shared/data/norglm-results/bias/bias_<model>.csv (columns perp_more, perp_less,
bias_type) and computes with pandas, per file, overall and per bias type:
  bias_paper    = 100 * mean(perp_more > perp_less)   (the authors' direction; ties count 0)
  bias_standard = 100 * mean(perp_more < perp_less)   (the usual CrowS-Pairs direction)
Writes tests/fixtures/bias_shares_reference.json, which tests/released_outputs.rs compares
`nlebench score --task no-crows-pairs --json` against. Only derived numbers are written, never
the released data itself.

Usage (from the repository root): python3 tools/reference/bias_shares.py [--data DIR]
"""

import argparse
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
FILES = ["bias_369M.csv", "bias_3B.csv", "bias_3B_continue.csv", "bias_23B.csv",
         "bias_llama_3B.csv", "bias_6B_nb-gptj.csv"]


def shares(df: pd.DataFrame) -> dict:
    out = {}
    for name, hit in (("bias_paper", df["perp_more"] > df["perp_less"]),
                      ("bias_standard", df["perp_more"] < df["perp_less"])):
        out[name] = float(hit.mean() * 100)
        for bias_type, frac in hit.groupby(df["bias_type"]).mean().items():
            out[f"{name}/{bias_type}"] = float(frac * 100)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/norglm-results/bias")
    args = ap.parse_args()
    ref = {"about": __doc__.strip().splitlines()[0], "pandas": pd.__version__, "files": {}}
    for f in FILES:
        df = pd.read_csv(args.data / f)
        ref["files"][f] = {"rows": len(df), "metrics": shares(df)}
        print(f"{f}: bias_paper {ref['files'][f]['metrics']['bias_paper']:.2f} %")
    out = ROOT / "tests/fixtures/bias_shares_reference.json"
    out.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
