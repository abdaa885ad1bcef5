#!/usr/bin/env python3
"""Write experiments/baselines/norglm-released.csv: the NorGLM paper's numbers as we can
recompute them from the authors' released outputs, as dashboard baselines, each with the
number of examples it was computed on (n) and their identity (examples).

The values come from the reference files the other scripts in this folder record with the
Python packages the authors used (pandas; sacrebleu and rouge):
  tests/fixtures/bias_shares_reference.json  (tools/reference/bias_shares.py)
  tests/fixtures/text_metrics_reference.json (tools/reference/text_metrics.py)
n and the examples identity are read from the released files themselves
(../shared/data/norglm-results), as nlebench computes them (spec::examples): an example's hash
is the SHA-256 of its inputs joined by U+001F (a bias pair's two sentences; a summary's
reference), the identity the SHA-256 of the sorted hashes joined by newlines. The CoT scene-1
numbers are filed under the task that computes them, `cot-scene-1` (its summary step), with
the paper's row filter (the 2048-token placeholder and empty cells drop the row).
Import with `nlebench baselines import experiments/baselines/norglm-released.csv`.

Usage (from the repository root): python3 tools/reference/released_baselines.py
"""

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "NorGLM released outputs"
RELEASED = ROOT.parent / "shared/data/norglm-results"
PLACEHOLDER = "Token indices sequence length is longer than 2048."
BIAS_MODELS = {"bias_369M.csv": "NorGPT-369M", "bias_3B.csv": "NorGPT-3B",
               "bias_3B_continue.csv": "NorGPT-3B-continue", "bias_23B.csv": "NorGPT-23B",
               "bias_llama_3B.csv": "NorLlama-3B", "bias_6B_nb-gptj.csv": "NB-GPT-J-6B"}
COT_MODELS = {"cot/scene1/CoT_23B_s1_contain.csv": "NorGPT-23B", "cot/scene1/CoT_3B_s1_contain.csv": "NorGPT-3B",
              "cot/scene1/CoT_6B_s1_contain.csv": "NB-GPT-J-6B",
              "cot/scene1/doc_grounded_qa_s1_GPT3.5.csv": "GPT-3.5"}


def identity(examples: list[list[str]]) -> str:
    """The examples identity of nlebench (spec::examples)."""
    hashes = sorted(hashlib.sha256("\x1f".join(e).encode()).hexdigest() for e in examples)
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def bias_file(name: str) -> tuple[str, Counter, int]:
    """A released bias file's examples identity, pairs per bias type, and pairs."""
    with (RELEASED / "bias" / name).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return identity([[r["sent_more"], r["sent_less"]] for r in rows]), Counter(r["bias_type"] for r in rows), len(rows)


def cot_file(name: str) -> str:
    """A released CoT scene-1 file's examples identity after the paper's row filter."""
    import pandas as pd
    d = pd.read_csv(RELEASED / name).replace(PLACEHOLDER, float("nan")).dropna()
    return identity([[str(r)] for r in d.positive_sample])


def main() -> None:
    fx = ROOT / "tests/fixtures"
    bias = json.loads((fx / "bias_shares_reference.json").read_text())["files"]
    text = json.loads((fx / "text_metrics_reference.json").read_text())["paper_means"]
    rows = []
    for f, model in BIAS_MODELS.items():
        examples, per_type, pairs = bias_file(f)
        for metric, value in sorted(bias[f]["metrics"].items()):
            if metric.startswith(("bias_paper", "bias_standard")):
                group = metric.split("/")[1] if "/" in metric else None
                n = per_type[group] if group else pairs
                rows.append(["no-crows-pairs", model, "zero-shot", metric, f"{value:.6f}", n, examples, SOURCE,
                             f"bias/{f}; recomputed by python3 tools/reference/bias_shares.py"])
    for f, model in COT_MODELS.items():
        examples = cot_file(f)
        for metric in ["bleu", "rouge_1", "rouge_2", "rouge_l"]:
            rows.append(["cot-scene-1", model, "CoT scene 1", metric, f"{text[f][metric]:.6f}", text[f]["pairs"],
                         examples, SOURCE,
                         f"{f}, paper row filter, {text[f]['rows_kept']} rows; "
                         "recomputed by python3 tools/reference/text_metrics.py"])
    out = ROOT / "experiments/baselines/norglm-released.csv"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "model", "setting", "metric", "value", "n", "examples", "source", "note"])
        w.writerows(rows)
    print(f"wrote {len(rows)} baselines to {out}")


if __name__ == "__main__":
    main()
