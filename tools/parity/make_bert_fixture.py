#!/usr/bin/env python3
"""Make tests/fixtures/tiny-bert-nli: a tiny random BertForSequenceClassification in the layout of
`NorGLM/Entailment` (3 labels: 0 contradiction, 1 entailment, 2 neutral) with a WordPiece
tokenizer trained on tools/parity/nb_corpus.txt, and record what transformers computes for the
authors' entailment input `f"{article} [SEP] {generated}"` (truncation at 512 tokens, padded batch).

reference.json: the texts, their input ids, logits [N, 3] and argmax labels; versions.

Usage (from the repository root):
  python tools/parity/make_bert_fixture.py
"""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/tiny-bert-nli"
CORPUS = ROOT / "tools/parity/nb_corpus.txt"

ARTICLE = ("Regjeringen la fram et nytt forslag om skatt og avgifter for neste år. Forslaget gir lavere skatt "
           "for familier med barn, men høyere avgifter på drivstoff. Opposisjonen er kritisk og mener at "
           "folk i distriktene rammes hardest.")
PAIRS = [
    (ARTICLE, "Regjeringen foreslår lavere skatt for barnefamilier."),
    (ARTICLE, "Opposisjonen støtter forslaget fullt ut."),
    (ARTICLE, "Været i dag er kaldt, men solen skinner over fjellene i vest."),
    ("Hun kjøpte brød, ost og melk i butikken.", "Hun handlet mat."),
    # Longer than 512 tokens: truncated, as the authors' pipeline does.
    (" ".join([ARTICLE] * 30), "Forslaget gir høyere avgifter på drivstoff."),
]


def main() -> None:
    import transformers
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    OUT.mkdir(parents=True, exist_ok=True)
    wp = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    wp.train([str(CORPUS)], vocab_size=400, min_frequency=1, show_progress=False)
    wp.save_model(str(OUT))  # vocab.txt
    from tokenizers.processors import BertProcessing
    wp._tokenizer.post_processor = BertProcessing(("[SEP]", wp.token_to_id("[SEP]")),
                                                  ("[CLS]", wp.token_to_id("[CLS]")))
    tok = PreTrainedTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                                  model_max_length=512)
    tok.save_pretrained(str(OUT))
    texts = [f"{a} [SEP] {g}" for a, g in PAIRS]
    batch = tok(texts, truncation=True, max_length=512, padding=True, return_tensors="pt")
    # The first seed whose random classifier does not give every text the same label.
    for seed in range(100):
        torch.manual_seed(seed)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=48, max_position_embeddings=512, num_labels=3,
                         id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
                         label2id={"contradiction": 0, "entailment": 1, "neutral": 2}, initializer_range=0.3)
        model = BertForSequenceClassification(cfg).eval()
        with torch.no_grad():
            logits = model(**batch).logits
        if len(set(logits.argmax(-1).tolist())) > 1:
            break
    model.save_pretrained(str(OUT), safe_serialization=True)
    ids = [[i for i, m in zip(row, mask) if m] for row, mask in
           zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist())]
    ref = {
        "pairs": [list(p) for p in PAIRS],
        "texts": texts,
        "input_ids": ids,
        "logits": logits.tolist(),
        "labels": logits.argmax(-1).tolist(),
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "python": sys.version.split()[0]},
    }
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: labels {ref['labels']}, lengths {[len(i) for i in ids]}")


if __name__ == "__main__":
    main()
