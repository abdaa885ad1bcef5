#!/usr/bin/env python3
"""transformers' logits of every causal fixture in bf16 and f16, for the engine's half-precision
parity test (worker/engine/tests/parity_half.rs).

For each tests/fixtures/<name> with a reference.json (made by make_arch_fixtures.py), this loads
the model with `AutoModelForCausalLM.from_pretrained(dir, dtype=torch.bfloat16 / torch.float16,
attn_implementation="eager")` on the CPU, runs each reference prompt alone and writes
  reference_half.safetensors   bf16_row{i} and f16_row{i}: logits [T_i, V], widened to f32
(the f32 logits are reference.safetensors' logits_row{i}).

Usage (from the repository root):  python tools/parity/half_reference.py [NAME...]
"""

import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures"
NAMES = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-mixtral", "tiny-gptj", "tiny-llama3",
         "tiny-qwen2", "tiny-qwen3", "tiny-nemo", "tiny-gemma2", "tiny-gemma3"]


def main():
    torch.manual_seed(0)
    for name in sys.argv[1:] or NAMES:
        d = FIX / name
        ids = json.loads((d / "reference.json").read_text())["prompt_ids"]
        out = {}
        for label, dtype in [("bf16", torch.bfloat16), ("f16", torch.float16)]:
            m = AutoModelForCausalLM.from_pretrained(d, dtype=dtype, attn_implementation="eager").eval()
            with torch.no_grad():
                for i, row in enumerate(ids):
                    out[f"{label}_row{i}"] = m(torch.tensor([row])).logits[0].float().contiguous()
        save_file(out, str(d / "reference_half.safetensors"),
                  metadata={"transformers": transformers.__version__, "torch": torch.__version__})
        print(name, "written")


if __name__ == "__main__":
    main()
