#!/usr/bin/env python3
"""Make tiny fixtures of every architecture in the paper and record transformers' outputs.

For each of tiny-gpt2 (already made by make_gpt2_fixture.py), tiny-llama, tiny-mistral
(sliding window 8), tiny-mixtral (4 experts, top-2) and tiny-gptj (rotary_dim 8), all f32 with
the project's Norwegian BPE tokenizer (worker/engine/assets/tokenizer-nb-bpe.json), this writes
tests/fixtures/<name>/ in Hugging Face layout plus
  reference.safetensors   logits_row{i} [1, T_i, V] of each prompt alone, every position
  reference.json          prompt token ids, greedy / beam / processor-laden generations
                          (HF `generate` on the left-padded batch), versions.
tiny-llama-bin: tiny-llama's weights as pytorch_model.bin (the fallback loader).
LoRA (PEFT): tests/fixtures/lora-gpt2 (c_attn, fan_in_fan_out) and lora-llama (q_proj, v_proj),
with random nonzero A and B, and reference logits of the PEFT model; seq-cls-gpt2: a SEQ_CLS
adapter (LoRA on c_attn + trained `score` head) on tiny-gpt2 with reference classification
logits of a right-padded batch.

Today's shapes (issue 28): tiny-llama3 (rope `llama3`), tiny-qwen2 (q/k/v biases, tied head),
tiny-qwen3 (q/k norms, head_dim 24 ≠ 64 / 4), tiny-nemo (Mistral with head_dim 24), tiny-gemma2
(alternating sliding/global layers, attention and final soft-capping, query_pre_attn_scalar,
(1 + w) norms, pre/post norms, scaled embeddings), tiny-gemma3 (q/k norms, local and global rope
bases with linear scaling on global layers); and tiny-llama-{linear,dynamic,yarn}. Norm weights
and biases are drawn at random too, so that none is a no-op.

Usage (from the repository root, after make_gpt2_fixture.py):
  python tools/parity/make_arch_fixtures.py            # everything
  python tools/parity/make_arch_fixtures.py NAME...    # only these causal-LM or LoRA fixtures
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures"
TOKENIZER = ROOT / "worker/engine/assets/tokenizer-nb-bpe.json"

PROMPTS = [
    "Norge er et langstrakt land i Nord-Europa med lange kyster og mange fjorder.",
    "Hun kjøpte brød, ost og melk i butikken",
    "Det regnet hele natten, og",
]

BASE = dict(vocab_size=1024, bos_token_id=0, eos_token_id=0, pad_token_id=None, initializer_range=0.1)
LLAMA = dict(BASE, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False)
ROPE_LLAMA3 = dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)
GEMMA = dict(BASE, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, sliding_window=6,
             max_position_embeddings=256, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh")
CONFIGS = {
    "tiny-llama": ("llama", LLAMA),
    "tiny-mistral": ("mistral", dict(LLAMA, sliding_window=8)),
    "tiny-mixtral": ("mixtral", dict(LLAMA, intermediate_size=48, num_local_experts=4, num_experts_per_tok=2)),
    "tiny-gptj": ("gptj", dict(BASE, n_embd=64, n_layer=2, n_head=4, rotary_dim=8, n_positions=256,
                               activation_function="gelu_new")),
    # Today's shapes (issue 28).
    "tiny-llama3": ("llama", dict(LLAMA, rope_parameters=ROPE_LLAMA3)),
    "tiny-qwen2": ("qwen2", dict(LLAMA, rope_parameters=dict(rope_type="default", rope_theta=1e6),
                                 tie_word_embeddings=True)),
    "tiny-qwen3": ("qwen3", dict(LLAMA, head_dim=24, rms_norm_eps=1e-6)),
    "tiny-nemo": ("mistral", dict(LLAMA, head_dim=24, sliding_window=None)),
    # Soft-capping caps small enough that tanh bends the random scores.
    "tiny-gemma2": ("gemma2", dict(GEMMA, attn_logit_softcapping=2.0, final_logit_softcapping=3.0)),
    "tiny-gemma3": ("gemma3_text", dict(
        GEMMA, sliding_window_pattern=2, layer_types=["sliding_attention", "full_attention"] * 2,
        rope_parameters=dict(full_attention=dict(rope_type="linear", factor=8.0, rope_theta=1e6),
                             sliding_attention=dict(rope_type="default", rope_theta=10000.0)))),
}
# The fixtures made before issue 28, with transformers' initial norms and biases.
FIRST = {"tiny-llama", "tiny-mistral", "tiny-mixtral", "tiny-gptj"}
# Llama with each of transformers' other rope scalings; dynamic NTK acts on texts longer than
# max_position_embeddings (12 here: the first prompt is, the last is not).
ROPES = {
    "tiny-llama-linear": ("llama", dict(LLAMA, rope_parameters=dict(rope_type="linear", rope_theta=10000.0,
                                                                    factor=2.0))),
    "tiny-llama-dynamic": ("llama", dict(LLAMA, max_position_embeddings=12, rope_parameters=dict(
        rope_type="dynamic", rope_theta=10000.0, factor=2.0))),
    "tiny-llama-yarn": ("llama", dict(LLAMA, max_position_embeddings=128, rope_parameters=dict(
        rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=32))),
}


def tokenizer():
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER), bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    return tok


def build(kind: str, cfg: dict, seed: int, vary_norms: bool = False):
    import transformers as t
    classes = {"llama": "Llama", "mistral": "Mistral", "mixtral": "Mixtral", "gptj": "GPTJ", "qwen2": "Qwen2",
               "qwen3": "Qwen3", "gemma2": "Gemma2", "gemma3_text": "Gemma3Text"}
    C = getattr(t, classes[kind] + "Config")
    M = getattr(t, ("Gemma3" if kind == "gemma3_text" else classes[kind]) + "ForCausalLM")
    torch.manual_seed(seed)
    model = M(C(**cfg)).eval()
    if not vary_norms:
        return model
    # Initial weights leave norms at exactly 1 and Qwen's biases at 0: make them count.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith(".bias"):
                p.copy_(torch.randn(p.shape) * 0.1 + (0.0 if "gemma" in kind or name.endswith(".bias") else 1.0))
    return model


def record(load, tok, out: Path, extra: dict) -> None:
    """Logits of each prompt alone and generations on the left-padded batch, each from a fresh
    `load()`: dynamic NTK scaling keeps the longest length it has seen in the model object, so a
    reused model would scale a short text by an earlier, longer one."""
    tensors, ref = {}, {"prompts": PROMPTS, "prompt_ids": [], **extra}
    for i, p in enumerate(PROMPTS):
        ids = tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ref["prompt_ids"].append(ids[0].tolist())
        with torch.no_grad():
            tensors[f"logits_row{i}"] = load()(ids).logits.contiguous()
    tok.padding_side = "left"
    batch = tok(PROMPTS, add_special_tokens=False, padding=True, return_tensors="pt")
    n = batch["input_ids"].shape[1]
    gens = {
        "greedy": dict(do_sample=False, max_new_tokens=12),
        "greedy_processors": dict(do_sample=False, max_new_tokens=16, min_new_tokens=10,
                                  no_repeat_ngram_size=2, repetition_penalty=1.3),
        "greedy_max_length": dict(do_sample=False, max_length=n + 7),
        "beam": dict(do_sample=False, num_beams=3, max_new_tokens=8),
    }
    ref["generate"] = {}
    for name, kw in gens.items():
        with torch.no_grad():
            out_ids = load().generate(**batch, pad_token_id=0, eos_token_id=0, **kw)
        ref["generate"][name] = {"params": kw, "new_tokens": [row[n:].tolist() for row in out_ids]}
    save_file(tensors, str(out / "reference.safetensors"))
    (out / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")


def versions() -> dict:
    import peft, transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": sys.version.split()[0]}


def save_tokenizer(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(TOKENIZER.read_text(encoding="utf-8"), encoding="utf-8")


def randomize_lora(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "lora_" in name or "modules_to_save" in name:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def make(tok, only: set[str]) -> None:
    """The causal-LM fixtures of CONFIGS and ROPES (those named in `only`, when given)."""
    for i, (name, (kind, cfg)) in enumerate({**CONFIGS, **ROPES}.items()):
        if only and name not in only:
            continue
        out = FIX / name
        model = build(kind, cfg, 2000 + i, vary_norms=name not in FIRST)
        model.save_pretrained(str(out))
        save_tokenizer(out)
        # Eager attention: transformers' own reference for soft-capped scores (Gemma 2).
        cls = type(model)
        record(lambda: cls.from_pretrained(str(out), dtype=torch.float32, attn_implementation="eager").eval(),
               tok, out, {"versions": versions(), "seed": 2000 + i})
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")


# Causal-LM LoRA adapters: (name, base fixture, target modules, fan_in_fan_out).
LORAS = [
    ("lora-gpt2", "tiny-gpt2", ["c_attn"], True),
    ("lora-llama", "tiny-llama", ["q_proj", "v_proj"], False),
    # Today's shapes: a biased q/k/v projection (Qwen2) and Gemma 2's MLP.
    ("lora-qwen2", "tiny-qwen2", ["q_proj", "k_proj", "v_proj", "o_proj"], False),
    ("lora-gemma2", "tiny-gemma2", ["q_proj", "v_proj", "gate_proj", "down_proj"], False),
]


def make_lora(tok, only: set[str]) -> None:
    """LoRA adapters with random A and B (PEFT initialises B = 0, a no-op) and the PEFT model's
    logits of the first prompt."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    text_ids = tok(PROMPTS[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
    for name, base_name, targets, fifo in LORAS:
        if only and name not in only:
            continue
        base = AutoModelForCausalLM.from_pretrained(str(FIX / base_name), dtype=torch.float32,
                                                    attn_implementation="eager").eval()
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, fan_in_fan_out=fifo,
                         task_type=TaskType.CAUSAL_LM)
        model = get_peft_model(base, cfg).eval()
        randomize_lora(model, 7)
        out = FIX / name
        model.save_pretrained(str(out))
        with torch.no_grad():
            logits = model(text_ids).logits.contiguous()
        save_file({"logits": logits}, str(out / "reference.safetensors"))
        print(f"{name}: adapter saved")


def main() -> None:
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    torch.use_deterministic_algorithms(True)
    tok = tokenizer()
    only = set(sys.argv[1:])
    make(tok, only)
    if only:
        make_lora(tok, only)
        return

    gpt2 = FIX / "tiny-gpt2"
    record(lambda: GPT2LMHeadModel.from_pretrained(str(gpt2), dtype=torch.float32).eval(), tok, gpt2,
           {"versions": versions(), "seed": 1234})

    # The same tiny Llama as a PyTorch pickle checkpoint (the `pytorch_model.bin` fallback).
    bin_dir = FIX / "tiny-llama-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    llama = build("llama", LLAMA, 2000)
    torch.save({k: v.contiguous() for k, v in llama.state_dict().items()}, bin_dir / "pytorch_model.bin")
    for f in ("config.json", "tokenizer.json"):
        (bin_dir / f).write_bytes((FIX / "tiny-llama" / f).read_bytes())

    make_lora(tok, set())

    # Sequence classification (NO-BoolQ style input), SEQ_CLS adapter with a `score` head.
    torch.manual_seed(99)
    clf = GPT2ForSequenceClassification.from_pretrained(str(gpt2), num_labels=2, dtype=torch.float32)
    clf.config.pad_token_id = 0
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True,
                     task_type=TaskType.SEQ_CLS)
    model = get_peft_model(clf, cfg).eval()
    randomize_lora(model, 11)
    out = FIX / "seq-cls-gpt2"
    model.save_pretrained(str(out))
    texts = ["Norge er et land i Nord-Europa. [SEP] Ligger Norge i Europa?",
             "Bussen går hvert tiende minutt. [SEP] Går bussen ofte?",
             "Hei [SEP] Er det sant?"]
    tok.padding_side = "right"
    batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.contiguous()
    save_file({"logits": logits}, str(out / "reference.safetensors"))
    (out / "reference.json").write_text(json.dumps({"texts": texts, "versions": versions()}, indent=1,
                                                   ensure_ascii=False) + "\n")
    print("seq-cls-gpt2: adapter saved", logits.tolist())


if __name__ == "__main__":
    main()
