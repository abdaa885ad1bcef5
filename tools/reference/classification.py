#!/usr/bin/env python3
"""Record scikit-learn's accuracy, F1 (binary and macro) and MCC on fixed label vectors, for
nlebench's classification-metric test: tests/fixtures/classification_reference.json.

Cases cover the quirks: no positive prediction (F1 = 0 by zero_division), a class present in
neither labels nor predictions (macro F1 averages only the labels that occur), constant
predictions (MCC = 0).

Needs: pip install scikit-learn numpy
Usage (from the repository root): python tools/reference/classification.py
"""

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    warnings.filterwarnings("ignore")
    rng = np.random.RandomState(11)
    gold2 = rng.randint(0, 2, 200)
    noisy2 = np.where(rng.rand(200) < 0.7, gold2, 1 - gold2)
    gold3 = rng.randint(0, 3, 150)
    noisy3 = np.where(rng.rand(150) < 0.6, gold3, rng.randint(0, 3, 150))
    cases = [
        ("binary", 2, gold2, noisy2),
        ("binary_never_positive", 2, gold2[:40], np.zeros(40, dtype=int)),
        ("three_classes", 3, gold3, noisy3),
        ("four_labels_one_unused", 4, gold3[:60], noisy3[:60]),
        ("constant", 2, np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1])),
    ]
    out = []
    for name, k, gold, pred in cases:
        row = {"name": name, "labels": k, "gold": gold.tolist(), "pred": pred.tolist(),
               "accuracy": accuracy_score(gold, pred),
               "f1_macro": f1_score(gold, pred, average="macro"),
               "mcc": matthews_corrcoef(gold, pred)}
        if k == 2:
            row["f1"] = f1_score(gold, pred, average="binary", pos_label=1)
        out.append(row)
        print(name, {m: round(v, 6) for m, v in row.items() if isinstance(v, float)})
    ref = {"versions": {"scikit-learn": version("scikit-learn"), "numpy": version("numpy")}, "cases": out}
    (ROOT / "tests/fixtures/classification_reference.json").write_text(json.dumps(ref) + "\n")


if __name__ == "__main__":
    main()
