#!/usr/bin/env python3
"""Make tests/fixtures/tiny-bert-toxicity: a tiny random BertForSequenceClassification with the
six labels of the multi-label toxicity classifiers on the Hub (unitary/toxic-bert's `toxic`,
`severe_toxic`, `obscene`, `threat`, `insult`, `identity_hate`; problem_type
multi_label_classification), reusing the WordPiece tokenizer of tests/fixtures/tiny-bert-nli,
and record what transformers' text-classification pipeline gives for Norwegian texts with
`top_k=None` (a sigmoid per label for multi-label models).

reference.json: texts, {label: score} per text, versions.

Usage (from the repository root; after make_bert_fixture.py):
  python tools/parity/make_toxicity_fixture.py
"""

import json
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
NLI = ROOT / "tests/fixtures/tiny-bert-nli"
OUT = ROOT / "tests/fixtures/tiny-bert-toxicity"
LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
TEXTS = [
    "Mannen gikk inn i rommet og satte seg ned.",
    "Du er en idiot, og alle vet det.",
    "Hun sa at naboene var hyggelige folk.",
    "De bestemte seg for å reise til Bergen i morgen tidlig.",
]


def main() -> None:
    import transformers
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, pipeline

    OUT.mkdir(parents=True, exist_ok=True)
    for f in ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]:
        shutil.copy(NLI / f, OUT / f)
    tok = AutoTokenizer.from_pretrained(str(OUT))
    torch.manual_seed(7)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=512, num_labels=len(LABELS),
                     id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
                     problem_type="multi_label_classification", initializer_range=0.3)
    model = BertForSequenceClassification(cfg).eval()
    model.save_pretrained(str(OUT), safe_serialization=True)
    clf = pipeline("text-classification", model=str(OUT), tokenizer=str(OUT), top_k=None)
    scores = [{d["label"]: d["score"] for d in out} for out in clf(TEXTS)]
    ref = {
        "texts": TEXTS,
        "scores": scores,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "python": sys.version.split()[0]},
    }
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {scores[1]}")


if __name__ == "__main__":
    main()
