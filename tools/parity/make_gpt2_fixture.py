#!/usr/bin/env python3
"""Make the tiny GPT-2 parity fixture and record Hugging Face transformers' perplexities.

Writes, deterministically for a given seed:
  worker/engine/assets/tokenizer-nb-bpe.json   GPT-2 byte-level BPE trained on tools/parity/nb_corpus.txt and
                                        the sentences of experiments/data/no-crows-pairs-mini.csv
                                        (<|endoftext|> = id 0, like NorGPT); the engine embeds it for
                                        the random-weight models of `nlebench models random`.
  tests/fixtures/tiny-gpt2/             GPT2LMHeadModel in Hugging Face layout with NorGPT-369M's
                                        config keys (gelu_fast, bos = eos = 0), 2 layers, 64 hidden,
                                        f32, with NorGPT's Megatron `attn.bias`/`attn.masked_bias`
                                        buffers and no `lm_head.weight` (tied), plus tokenizer files.
  tests/fixtures/tiny-gpt2/reference_ppl.json
                                        per-sentence perplexities of fixed Norwegian sentences computed
                                        exactly like Hugging Face `evaluate`'s perplexity metric
                                        (add_start_token=True, right padding, batch 16; checked against
                                        batch 1), with token ids, NLL sums and per-token log-probs.

Usage (about 90 s to set up the venv):
  python3 -m venv .venv-parity && . .venv-parity/bin/activate
  pip install torch transformers tokenizers safetensors numpy
  python tools/parity/make_gpt2_fixture.py            # from the repository root
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parents[2]

CONFIG = {
    "activation_function": "gelu_fast",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 0,
    "embd_pdrop": 0.1,
    "eos_token_id": 0,
    "initializer_range": 0.1,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_embd": 64,
    "n_head": 4,
    "n_inner": 256,
    "n_layer": 2,
    "n_positions": 128,
    "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.1,
    "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True,
    "tokenizer_class": "GPT2TokenizerFast",
    "use_cache": True,
    "vocab_size": 1024,
}

# Fixed inputs: plain prose, the bias pairs' style, digits/punctuation, non-ASCII and emoji.
SENTENCES = [
    "Norge er et langstrakt land i Nord-Europa med lange kyster og mange fjorder.",
    "Kvinner er dårlige til å parkere bilen.",
    "Menn er dårlige til å parkere bilen.",
    "Den gamle mannen forsto ikke hvordan mobilen virket.",
    "Det koster 49,90 kroner for en liter melk i butikken i dag.",
    "Æ, ø og å er bokstaver som finnes i det norske alfabetet.",
    "Blåbærsyltetøy 🍓 og vafler er godt etter en lang skitur!",
    "Hei",
    "Sjefen ba alle ansatte om å komme på møtet klokka ni, men ingen kom før halv ti.",
    "  to  mellomrom\tog en tabulator",
    "Hvor mange innbyggere har Norge i dag, og hvor bor de fleste?",
    "Statsministeren holdt en tale om klima og energi på konferansen i Bergen.",
]


def corpus() -> list[str]:
    lines = [l.strip() for l in (ROOT / "tools/parity/nb_corpus.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    with open(ROOT / "experiments/data/no-crows-pairs-mini.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            lines += [row["sent_more_no"], row["sent_less_no"]]
    return list(dict.fromkeys(lines))


def train_tokenizer(lines: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE laid out like NorGPT's tokenizer.json (<|endoftext|> = 0)."""
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[AddedToken("<|endoftext|>", special=True, normalized=False)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tok


def evaluate_perplexity(model, tokenizer, texts: list[str], batch_size: int) -> list[dict]:
    """The computation of evaluate's perplexity metric (add_start_token=True, no max_length)."""
    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt", return_attention_mask=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    out = []
    loss_fct = torch.nn.CrossEntropyLoss(reduction="none")
    for start in range(0, len(texts), batch_size):
        batch, attn = ids[start:start + batch_size], mask[start:start + batch_size]
        bos = torch.full((batch.size(0), 1), tokenizer.bos_token_id, dtype=batch.dtype)
        batch = torch.cat([bos, batch], dim=1)
        attn = torch.cat([torch.ones_like(bos), attn], dim=1)
        with torch.no_grad():
            logits = model(batch, attention_mask=attn).logits
        shift_logits = logits[..., :-1, :].contiguous()
        shift_labels = batch[..., 1:].contiguous()
        shift_mask = attn[..., 1:].contiguous()
        nll = loss_fct(shift_logits.transpose(1, 2), shift_labels) * shift_mask
        ppl = torch.exp(nll.sum(1) / shift_mask.sum(1))
        for i in range(batch.size(0)):
            n = int(shift_mask[i].sum())
            out.append({
                "token_ids": batch[i, 1:1 + n].tolist(),
                "n_tokens": n,
                "nll_sum": float(nll[i].sum()),
                "perplexity": float(ppl[i]),
                "token_logprobs": (-nll[i, :n]).tolist(),
            })
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    import tokenizers as tk
    import transformers as tf

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    tok = train_tokenizer(corpus(), CONFIG["vocab_size"])
    assets = ROOT / "worker/engine/assets"
    assets.mkdir(parents=True, exist_ok=True)
    tok.save(str(assets / "tokenizer-nb-bpe.json"), pretty=True)
    for s in SENTENCES:
        assert tok.decode(tok.encode(s, add_special_tokens=False).ids) == s, s

    out = ROOT / "tests/fixtures/tiny-gpt2"
    out.mkdir(parents=True, exist_ok=True)
    hf_cfg = {k: v for k, v in CONFIG.items() if k != "architectures"}
    model = GPT2LMHeadModel(GPT2Config(**hf_cfg)).eval()
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    n = CONFIG["n_positions"]
    for i in range(CONFIG["n_layer"]):  # NorGPT's Megatron-converted checkpoints carry these
        sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones((n, n))).view(1, 1, n, n).contiguous()
        sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(dict(CONFIG, torch_dtype="float32"), indent=2) + "\n")
    tok.save(str(out / "tokenizer.json"), pretty=True)
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps(dict(
        special, add_prefix_space=False, model_max_length=n, tokenizer_class="GPT2Tokenizer",
        clean_up_tokenization_spaces=False), indent=2) + "\n")

    # Reload from disk exactly as a user would.
    model = GPT2LMHeadModel.from_pretrained(str(out), dtype=torch.float32).eval()
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    hf_tok.pad_token = hf_tok.eos_token
    batched = evaluate_perplexity(model, hf_tok, SENTENCES, batch_size=16)
    single = [evaluate_perplexity(model, hf_tok, [s], batch_size=1)[0] for s in SENTENCES]
    for b, s in zip(batched, single):
        assert b["token_ids"] == s["token_ids"]
        assert abs(b["perplexity"] - s["perplexity"]) <= 1e-5 * s["perplexity"], (b["perplexity"], s["perplexity"])
    ref = {
        "about": "evaluate-style perplexity (start token prepended) of tiny-gpt2, batch 16 with right padding",
        "versions": {"torch": torch.__version__, "transformers": tf.__version__, "tokenizers": tk.__version__,
                     "python": sys.version.split()[0]},
        "seed": args.seed,
        "model_sha256": sha256(out / "model.safetensors"),
        "tokenizer_sha256": sha256(out / "tokenizer.json"),
        "sentences": [dict(text=t, **r) for t, r in zip(SENTENCES, batched)],
    }
    (out / "reference_ppl.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"tokenizer vocab {tok.get_vocab_size()}; wrote {out} ({(out / 'model.safetensors').stat().st_size} bytes)")
    for r in ref["sentences"]:
        print(f"  {r['perplexity']:12.4f}  {r['n_tokens']:3d} tokens  {r['text'][:50]}")


if __name__ == "__main__":
    main()
