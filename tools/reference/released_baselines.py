#!/usr/bin/env python3
"""Write experiments/baselines/norglm-released.csv: the NorGLM paper's numbers as we can
recompute them from the authors' released outputs, as dashboard baselines.

The values come from the reference files the other scripts in this folder record with the
Python packages the authors used (pandas; sacrebleu and rouge):
  tests/fixtures/bias_shares_reference.json  (tools/reference/bias_shares.py)
  tests/fixtures/text_metrics_reference.json (tools/reference/text_metrics.py)
Import with `nlebench baselines import experiments/baselines/norglm-released.csv`.

Usage (from the repository root): python3 tools/reference/released_baselines.py
"""

import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "NorGLM released outputs"
BIAS_MODELS = {"bias_369M.csv": "NorGPT-369M", "bias_3B.csv": "NorGPT-3B",
               "bias_3B_continue.csv": "NorGPT-3B-continue", "bias_23B.csv": "NorGPT-23B",
               "bias_llama_3B.csv": "NorLlama-3B", "bias_6B_nb-gptj.csv": "NB-GPT-J-6B"}
COT_MODELS = {"cot/scene1/CoT_23B_s1_contain.csv": "NorGPT-23B", "cot/scene1/CoT_3B_s1_contain.csv": "NorGPT-3B",
              "cot/scene1/CoT_6B_s1_contain.csv": "NB-GPT-J-6B",
              "cot/scene1/doc_grounded_qa_s1_GPT3.5.csv": "GPT-3.5"}


def main() -> None:
    fx = ROOT / "tests/fixtures"
    bias = json.loads((fx / "bias_shares_reference.json").read_text())["files"]
    text = json.loads((fx / "text_metrics_reference.json").read_text())["paper_means"]
    rows = []
    for f, model in BIAS_MODELS.items():
        for metric, value in sorted(bias[f]["metrics"].items()):
            if metric.startswith(("bias_paper", "bias_standard")):
                rows.append(["no-crows-pairs", model, "zero-shot", metric, f"{value:.6f}", SOURCE,
                             f"bias/{f}; recomputed by python3 tools/reference/bias_shares.py"])
    for f, model in COT_MODELS.items():
        for metric in ["bleu", "rouge_1", "rouge_2", "rouge_l"]:
            rows.append(["multi-qa-sum-summary", model, "CoT scene 1", metric, f"{text[f][metric]:.6f}", SOURCE,
                         f"{f}, paper row filter, {text[f]['rows_kept']} rows; "
                         "recomputed by python3 tools/reference/text_metrics.py"])
    out = ROOT / "experiments/baselines/norglm-released.csv"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "model", "setting", "metric", "value", "source", "note"])
        w.writerows(rows)
    print(f"wrote {len(rows)} baselines to {out}")


if __name__ == "__main__":
    main()
