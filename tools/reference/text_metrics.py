#!/usr/bin/env python3
"""Record per-pair sentence BLEU (sacrebleu) and ROUGE-1/2/L F (rouge 1.0.x) on the NorGLM
authors' released Norwegian outputs, for tests/text_metrics.rs.

Pairs: CoT scene-1 files (generated_text and generated_text_s1 against positive_sample) and
toxicity generations (generated_no_<model> against prompt_no), every row, cells read as raw
strings (keep_default_na=False) so that the comparison is about the metrics, not CSV parsing.
A pair for which the `rouge` package raises is recorded as an error, as the authors' loop skips
it. Also records, per CoT file, the authors' filtered means (placeholder → empty, rows with an
empty cell dropped, pandas' default NA parsing) as the `score --filter paper` check.

Also records nltk.word_tokenize of every hypothesis (token count and a hash of the tokens) and
the authors' diversity metrics (Distinct-n as implemented and standard, ENTR, USR) per file;
NLTK's Punkt English model must be installed (tools/reference/fetch_punkt.py).

Writes tests/fixtures/text_metrics_reference.json (derived numbers only; the released files stay
in ../shared). Usage: python3 tools/reference/text_metrics.py [--data DIR]
"""

import argparse
import hashlib
import json
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import sacrebleu
from rouge import Rouge
from sacrebleu.metrics import BLEU

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "Token indices sequence length is longer than 2048."
COT = ["CoT_23B_s1_contain.csv", "CoT_3B_s1_contain.csv", "CoT_6B_s1_contain.csv", "doc_grounded_qa_s1_GPT3.5.csv"]
TOX = {"toxicity_369M.csv": "generated_no_369M", "toxicity_3B.csv": "generated_no_3B",
       "toxicity_3B_continue.csv": "generated_no_3Bc", "toxicity_23B.csv": "generated_no_23B",
       "toxicity_6B_nb-gptj.csv": "generated_no_6B"}


def pairs(hyps, refs):
    bleu, rouge, out = BLEU(), Rouge(), []
    for h, r in zip(hyps, refs):
        try:
            s = rouge.get_scores(h, r)[0]
        except Exception as e:  # noqa: BLE001 - the authors skip any pair that raises
            out.append({"error": f"{type(e).__name__}: {e}"})
            continue
        out.append({"bleu": bleu.sentence_score(h, [r]).score, "rouge_1": s["rouge-1"]["f"],
                    "rouge_2": s["rouge-2"]["f"], "rouge_l": s["rouge-l"]["f"]})
    return out


def tokens_and_diversity(texts):
    """nltk.word_tokenize of each text (count + hash of the token list), and the authors'
    diversity metrics as the NorGLM reference notes describe them, averaged over texts with at
    least one token: distinct-n = len(ngrams)/len(tokens) (all n-grams), the standard
    unique/total distinct-n, ENTR = geometric mean of H1..H3 with p = count / distinct n-grams
    (np.prod(h) ** (1/3), NaN when the product is negative), and USR over all texts."""
    from nltk import ngrams, word_tokenize
    per_text, rows = [], {f"distinct_{n}": [] for n in range(1, 5)}
    rows.update({f"distinct_std_{n}": [] for n in range(1, 5)})
    rows["entr"] = []
    for t in texts:
        toks = word_tokenize(t)
        per_text.append([len(toks), hashlib.sha256("\x1f".join(toks).encode()).hexdigest()[:16]])
        if not toks:
            continue
        for n in range(1, 5):
            grams = list(ngrams(toks, n))
            rows[f"distinct_{n}"].append(len(grams) / len(toks))
            rows[f"distinct_std_{n}"].append(len(set(grams)) / len(grams) if grams else 0.0)
        hs = []
        for n in range(1, 4):
            c = Counter(ngrams(toks, n))
            d = len(c)
            hs.append(0.0 if d <= 1 else -sum((v / d) * math.log(v / d) for v in c.values()))
        with np.errstate(invalid="ignore"):
            rows["entr"].append(float(np.prod(np.array(hs)) ** (1 / 3)))
    means = {k: float(np.mean(v)) if v else None for k, v in rows.items()}
    valid = [x for x in rows["entr"] if not math.isnan(x)]
    means["entr"] = None if any(math.isnan(x) for x in rows["entr"]) else means["entr"]
    means["entr_valid"] = float(np.mean(valid)) if valid else None
    means["usr"] = len(set(texts)) / len(texts)
    return per_text, means


def paper_means(path: Path) -> dict:
    d = pd.read_csv(path).replace(PLACEHOLDER, np.nan).dropna()
    got = [p for p in pairs(d.generated_text, d.positive_sample) if "error" not in p]
    return {"rows_kept": len(d), "pairs": len(got),
            **{k: float(np.mean([p[k] for p in got])) for k in ("bleu", "rouge_1", "rouge_2", "rouge_l")}}


def main() -> None:
    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/norglm-results")
    args = ap.parse_args()
    import nltk
    ref = {"about": "per-pair sacrebleu sentence BLEU and rouge F; see tools/reference/text_metrics.py",
           "versions": {"sacrebleu": sacrebleu.__version__, "rouge": "1.0.1", "pandas": pd.__version__,
                        "nltk": nltk.__version__},
           "files": {}, "paper_means": {}, "tokens": {}, "diversity": {}}
    for f in COT:
        d = pd.read_csv(args.data / "cot/scene1" / f, keep_default_na=False, dtype=str)
        for hyp in ("generated_text", "generated_text_s1"):
            ref["files"][f"cot/scene1/{f}:{hyp}:positive_sample"] = pairs(d[hyp], d["positive_sample"])
            ref["tokens"][f"cot/scene1/{f}:{hyp}"], ref["diversity"][f"cot/scene1/{f}:{hyp}"] = \
                tokens_and_diversity(list(d[hyp]))
        ref["paper_means"][f"cot/scene1/{f}"] = paper_means(args.data / "cot/scene1" / f)
    for f, col in TOX.items():
        d = pd.read_csv(args.data / "toxicity" / f, keep_default_na=False, dtype=str)
        ref["files"][f"toxicity/{f}:{col}:prompt_no"] = pairs(d[col], d["prompt_no"])
        ref["tokens"][f"toxicity/{f}:{col}"], ref["diversity"][f"toxicity/{f}:{col}"] = \
            tokens_and_diversity(list(d[col]))
    n = sum(len(v) for v in ref["files"].values())
    errors = sum("error" in p for v in ref["files"].values() for p in v)
    out = ROOT / "tests/fixtures/text_metrics_reference.json"
    out.write_text(json.dumps(ref, separators=(",", ":")) + "\n")
    print(f"{n} pairs ({errors} raise in rouge); wrote {out}")
    print(json.dumps(ref["paper_means"], indent=1))


if __name__ == "__main__":
    main()
