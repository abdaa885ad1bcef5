#!/usr/bin/env python3
"""Record reference values of the significance tests nlebench runs between two runs, for
orchestrator/metrics/tests/significance.rs: tests/fixtures/significance_reference.json.

- McNemar's exact test: statsmodels.stats.contingency_tables.mcnemar(table, exact=True) on
  [[both right, only A right], [only B right, both wrong]];
- the exact paired randomization test: scipy.stats.permutation_test((x, y), mean of x - y,
  permutation_type="samples", n_resamples=inf, alternative="two-sided") on n <= 16 pairs;
- Holm's correction: statsmodels.stats.multitest.multipletests(p, method="holm");
- the paired bootstrap (no library implements this exact test): the same definition as
  nlebench's (resample the per-example differences with replacement; p = share of resampled
  mean differences at least |observed| away from the observed one), here with numpy's
  generator and 200,000 draws, so nlebench's 10,000-draw estimate agrees with it within its
  Monte-Carlo error (3 sqrt(p (1 - p) / 10,000)), not bit for bit.

- the comparison of two of the authors' released bias files (`released`): the bias_paper
  outcome per pair (perp_more > perp_less) of bias_369M.csv and bias_23B.csv, paired by their
  sentences, McNemar's exact p by statsmodels (tests/compare.rs imports both files and
  compares them with `nlebench compare`). Needs ../shared/data/norglm-results.

All inputs are drawn with fixed seeds. Needs: pip install numpy scipy statsmodels
Usage (from the repository root): python tools/reference/significance.py
"""

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from scipy.stats import permutation_test
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

ROOT = Path(__file__).resolve().parents[2]
BOOT = 10_000          # nlebench's draws in the test
REFERENCE_BOOT = 200_000  # the reference's draws: its own Monte-Carlo error is ~4.5x smaller


def bootstrap_p(a, b, iterations, rng):
    d = np.asarray(b, float) - np.asarray(a, float)
    obs = d.mean()
    if obs == 0:
        return 1.0
    idx = rng.integers(0, len(d), size=(iterations, len(d)))
    means = d[idx].mean(axis=1)
    return float(np.mean(np.abs(means - obs) >= abs(obs)))


def main() -> None:
    rng = np.random.default_rng(2024)
    out = {"versions": {p: version(p) for p in ["numpy", "scipy", "statsmodels"]},
           "bootstrap_iterations": BOOT}

    out["mcnemar"] = []
    for b, c in [(0, 3), (5, 12), (30, 45), (100, 130), (7, 7), (250, 300), (1, 40), (0, 0), (613, 560)]:
        p = mcnemar([[10, b], [c, 10]], exact=True).pvalue
        out["mcnemar"].append({"b": b, "c": c, "p": float(p)})

    out["randomization"] = []
    cases = [rng.normal(0.3, 1.0, n).round(3).tolist() for n in (5, 8, 12, 16)]
    cases.append([1.0, -1.0, 2.0, 0.0, 1.0, 1.0, -2.0, 3.0, 1.0, 0.0])  # ties and zeros
    cases.append([0.5] * 9)
    for d in cases:
        x = np.asarray(d)
        y = np.zeros_like(x)
        res = permutation_test((x, y), lambda x, y, axis: np.mean(x - y, axis=axis),
                               permutation_type="samples", n_resamples=np.inf,
                               alternative="two-sided", vectorized=True)
        out["randomization"].append({"d": d, "p": float(res.pvalue)})

    out["holm"] = []
    for p in [[0.01, 0.04, 0.03], [0.2, 0.001, 0.049, 0.5, 0.012], [0.9, 0.95], [0.0, 0.3, 0.3]]:
        out["holm"].append({"p": p, "adjusted": multipletests(p, method="holm")[1].tolist()})

    out["bootstrap"] = []
    for n, shift, noise in [(40, 0.1, 1.0), (100, 0.05, 0.5), (200, 0.02, 0.4), (60, 0.0, 1.0)]:
        a = rng.normal(0.5, noise, n).round(4)
        b = (a + shift + rng.normal(0.0, noise, n)).round(4)
        p = bootstrap_p(a, b, REFERENCE_BOOT, np.random.default_rng(7))
        out["bootstrap"].append({"a": a.tolist(), "b": b.tolist(), "p": p})

    released = ROOT.parent / "shared/data/norglm-results/bias"
    import csv
    outcome = {}
    for name in ["bias_369M.csv", "bias_23B.csv"]:
        with (released / name).open(newline="") as fh:
            outcome[name] = {(r["sent_more"], r["sent_less"]): float(r["perp_more"]) > float(r["perp_less"])
                             for r in csv.DictReader(fh)}
    a, b = outcome["bias_369M.csv"], outcome["bias_23B.csv"]
    shared = [k for k in a if k in b]
    only_a = sum(1 for k in shared if a[k] and not b[k])
    only_b = sum(1 for k in shared if b[k] and not a[k])
    both = sum(1 for k in shared if a[k] and b[k])
    neither = len(shared) - only_a - only_b - both
    out["released"] = {"a": "bias/bias_369M.csv", "b": "bias/bias_23B.csv", "metric": "bias_paper",
                       "shared": len(shared), "only_a": only_a, "only_b": only_b,
                       "p": float(mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue)}

    path = ROOT / "tests/fixtures/significance_reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
