#!/usr/bin/env python3
"""Record lm-evaluation-harness's own results on the tiny fixture models, for
`worker/tests/lmeval_hflm.rs`, through `HFLM` in float32 on the CPU: for each (context,
continuation) in Norwegian, the tokens `loglikelihood` scores (`_encode_pair`, the prefix
token for an empty context), the log-likelihood and `is_greedy`; and for each
`generate_until` request (greedy, with stop strings and a token budget), the text; and for
each `loglikelihood_rolling` text (one longer than three windows), its log-likelihood.

Usage (lm-eval 0.4.13 with torch and transformers, e.g. `pip install lm-eval==0.4.13 torch
transformers`):

    python tools/lmeval/hflm_reference.py --out tests/fixtures/lmeval_hflm_reference.json
"""

import argparse
import json
import pathlib

import lm_eval
import torch
import transformers
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The fixtures with a tokenizer config (lm-eval needs its start or end token).
MODELS = ["tiny-gpt2"]

REQUESTS = [
    ("Hovedstaden i Norge er", " Oslo"),
    # Trailing whitespace moves to the continuation.
    ("Hovedstaden i Norge er ", "Oslo"),
    ("Spørsmål: Hva heter kongen av Norge?\nSvar:", " Harald V"),
    # Multiple choice: one context, several continuations.
    ("Katten sitter på", " taket"),
    ("Katten sitter på", " bordet"),
    ("Katten sitter på", " månen over fjorden"),
    # An empty context: the prefix token.
    ("", "Det var en gang en katt som bodde i Bergen."),
    # Longer than the context limit: the context is cut from the left.
    (" ".join(["Fjellet er høyt og vannet er kaldt."] * 40), " Sola skinner."),
]


# (context, generation arguments), with lm-eval's defaults filled in as task files get them.
GENERATIONS = [
    ("Spørsmål: Hva heter hovedstaden i Norge?\nSvar:", {"until": ["\n"], "max_gen_toks": 12}),
    ("Det var en gang", {"until": ["."], "max_gen_toks": 16, "do_sample": False}),
    ("Oppsummering:", {"until": ["\n\n", "Spørsmål"], "max_gen_toks": 24, "temperature": 0.0}),
    ("Katten", {"max_gen_toks": 8}),
    # Longer than the room the token budget leaves: the context is cut from the left.
    (" ".join(["Fjellet er høyt og vannet er kaldt."] * 40), {"until": ["\n"], "max_gen_toks": 10}),
]


ROLLING = [
    "Det var en gang en katt som bodde i Bergen.",
    # Longer than three windows of the fixture's 128 tokens.
    " ".join(["Fjellet er høyt, vannet er kaldt og båtene ligger stille i havna."] * 30),
]


def greedy_request(lm, tok):
    """A (context, continuation) whose continuation is the model's greedy next token, so that
    the reference holds an `is_greedy` that is true."""
    for context in ["Det var en gang", "Norge er et land", "Jeg liker", "Bergen ligger"]:
        ids = tok(context, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = lm.model(ids).logits[0, -1]
        continuation = tok.decode([int(logits.argmax())])
        got = lm.loglikelihood(
            [Instance("loglikelihood", {}, (context, continuation), 0)], disable_tqdm=True
        )
        if got[0][1]:
            return context, continuation
    raise SystemExit("no greedy continuation found")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    out = {
        "about": "lm-eval HFLM.loglikelihood and generate_until on the fixtures (tools/lmeval/hflm_reference.py)",
        "lm_eval": lm_eval.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "models": {},
    }
    for name in MODELS:
        lm = HFLM(
            pretrained=str(ROOT / "tests/fixtures" / name),
            batch_size=1,
            device="cpu",
            dtype="float32",
        )
        requests = REQUESTS + [greedy_request(lm, lm.tokenizer)]
        instances = [
            Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(requests)
        ]
        results = lm.loglikelihood(instances, disable_tqdm=True)
        rows = []
        for (context, continuation), (logprob, greedy) in zip(requests, results):
            if context == "":
                enc = ([lm.prefix_token_id], lm.tok_encode(continuation))
            else:
                enc = lm._encode_pair(context, continuation)
            rows.append(
                {
                    "context": context,
                    "continuation": continuation,
                    "context_enc": enc[0],
                    "continuation_enc": enc[1],
                    "logprob": logprob,
                    "is_greedy": bool(greedy),
                }
            )
        gen = [Instance("generate_until", {}, (c, dict(k)), i) for i, (c, k) in enumerate(GENERATIONS)]
        texts = lm.generate_until(gen, disable_tqdm=True)
        rolling = lm.loglikelihood_rolling(
            [Instance("loglikelihood_rolling", {}, (s,), i) for i, s in enumerate(ROLLING)],
            disable_tqdm=True,
        )
        out["models"][name] = {
            "prefix_token_id": lm.prefix_token_id,
            "max_length": lm.max_length,
            "requests": rows,
            "loglikelihood_rolling": [
                {"text": s, "tokens": len(lm.tok_encode(s)), "logprob": v}
                for s, v in zip(ROLLING, rolling)
            ],
            "generate_until": [
                {"context": c, "arguments": k, "text": s} for (c, k), s in zip(GENERATIONS, texts)
            ],
        }
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
