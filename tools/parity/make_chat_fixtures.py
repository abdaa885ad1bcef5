#!/usr/bin/env python3
"""Record how transformers renders the chat templates of tests/fixtures/chat/templates.

For each template, each conversation of tests/fixtures/chat/conversations.json and
add_generation_prompt false and true, `apply_chat_template(tokenize=False)` of a tokenizer with
bos `<|begin_of_text|>`, eos `<|eot_id|>` and pad `<pad>` gives the text, or the message of the
`TemplateError` it raises. The results go to tests/fixtures/chat/reference.json, with versions.
The templates are written for these tests in the shapes of Llama 3.1, Gemma 3, Qwen3 and
Mistral's templates (system turns, alternation checks with raise_exception, namespace, Python
string methods, tojson, loop controls); none is copied from a model.

Usage (from the repository root): python tools/parity/make_chat_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jinja2
import transformers
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures/chat"
TOKENIZER = ROOT / "worker/engine/assets/tokenizer-nb-bpe.json"

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hva er hovedstaden i Norge?"}],
    "system_user": [
        {"role": "system", "content": "Du er en hjelpsom assistent. Svar kort."},
        {"role": "user", "content": "  Hva betyr «dugnad»?\n"},
    ],
    "multi_turn": [
        {"role": "system", "content": "Svar på bokmål."},
        {"role": "user", "content": "Hva er 2 + 2?"},
        {"role": "assistant", "content": "<think>\nenkelt\n</think>\n\n4"},
        {"role": "user", "content": "Og «æøå» med \"anførselstegn\"?\tTab og\nlinjeskift."},
    ],
    "not_alternating": [
        {"role": "user", "content": "Hei"},
        {"role": "user", "content": "Hallo igjen"},
    ],
}


def main() -> None:
    (FIX / "conversations.json").write_text(json.dumps(CONVERSATIONS, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER), bos_token="<|begin_of_text|>",
                                  eos_token="<|eot_id|>", pad_token="<pad>")
    renders = {}
    for path in sorted((FIX / "templates").glob("*.jinja")):
        template = path.read_text(encoding="utf-8")
        for name, messages in CONVERSATIONS.items():
            for gen in (False, True):
                key = f"{path.stem}/{name}/{'gen' if gen else 'nogen'}"
                try:
                    renders[key] = {"text": tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                                    add_generation_prompt=gen)}
                except jinja2.exceptions.TemplateError as e:
                    renders[key] = {"error": str(e)}
    reference = {
        "special_tokens": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<pad>"},
        "renders": renders,
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__,
                     "python": sys.version.split()[0]},
    }
    (FIX / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(renders)} renders, {sum('error' in r for r in renders.values())} refused")


if __name__ == "__main__":
    main()
