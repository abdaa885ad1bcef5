#!/usr/bin/env python3
"""Record what mauve-text computes on fixed feature vectors, for nlebench's MAUVE test.

Writes tests/fixtures/mauve_reference.json: for each case the P and Q feature rows (Gaussian
clusters around random directions, deterministic), the arguments, and compute_mauve's mauve,
frontier_integral, mauve_star, frontier_integral_star and histograms. The clusters are well
separated so that k-means has one answer and the result does not depend on faiss's seeding.

Needs: pip install mauve-text faiss-cpu scikit-learn numpy
Usage (from the repository root): python tools/reference/mauve_reference.py
"""

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def clusters(rng, centers, weights, n, noise):
    counts = np.round(np.array(weights) * n).astype(int)
    rows = [centers[c] + noise * rng.standard_normal((k, centers.shape[1])) for c, k in enumerate(counts)]
    return np.vstack(rows).astype(np.float32)


TEXTS = [
    "Norge er et langstrakt land i Nord-Europa med lange kyster og mange fjorder.",
    "Hun kjøpte brød, ost og melk i butikken.",
    " ".join(["Regjeringen la fram et nytt forslag om skatt og avgifter for neste år."] * 40),
]


def featurize() -> dict:
    """mauve's own featurization (final hidden state of the last token; 128 tokens at most, the fixture's context) with
    the project's tiny GPT-2 fixture as the feature model."""
    import torch
    from mauve.utils import featurize_tokens_from_model
    from transformers import AutoModel, AutoTokenizer
    model_dir = ROOT / "tests/fixtures/tiny-gpt2"
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tokens = [tok.encode(t, return_tensors="pt", truncation=True, max_length=128) for t in TEXTS]
    with torch.no_grad():
        feats = featurize_tokens_from_model(model, tokens, batch_size=1).numpy()
    return {"model": "tests/fixtures/tiny-gpt2", "max_tokens": 128, "texts": TEXTS,
            "lengths": [int(t.shape[1]) for t in tokens], "features": feats.tolist()}


def main() -> None:
    import mauve
    rng = np.random.RandomState(2024)
    cases = []
    specs = [
        # name, dims, P weights, Q weights, n, num_buckets ("auto" or int)
        ("auto_5_clusters", 24, [.3, .3, .2, .1, .1], [.1, .1, .2, .3, .3], 50, "auto"),
        ("disjoint_support", 16, [.5, .3, .2, 0], [0, .2, .3, .5], 80, 4),
        ("same_distribution", 32, [.25, .25, .25, .25], [.25, .25, .25, .25], 60, 4),
    ]
    for name, d, pw, qw, n, buckets in specs:
        k = len(pw)
        centers = rng.standard_normal((k, d)) * 3.0
        p = clusters(rng, centers, pw, n, 0.05)
        q = clusters(rng, centers, qw, n, 0.05)
        out = mauve.compute_mauve(p_features=p, q_features=q, num_buckets=buckets, verbose=False)
        cases.append({
            "name": name,
            "num_buckets": buckets,
            "p": p.tolist(),
            "q": q.tolist(),
            "mauve": float(out.mauve),
            "frontier_integral": float(out.frontier_integral),
            "mauve_star": float(out.mauve_star),
            "frontier_integral_star": float(out.frontier_integral_star),
            "p_hist": out.p_hist.tolist(),
            "q_hist": out.q_hist.tolist(),
        })
        print(f"{name}: mauve {out.mauve:.6f}, fi {out.frontier_integral:.6f}, buckets {out.num_buckets}")
    ref = {"versions": {p: version(p) for p in ["mauve-text", "faiss-cpu", "scikit-learn", "numpy", "transformers"]},
           "cases": cases, "features": featurize()}
    (ROOT / "tests/fixtures/mauve_reference.json").write_text(json.dumps(ref) + "\n")


if __name__ == "__main__":
    main()
