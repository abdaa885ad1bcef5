#!/usr/bin/env python3
"""Record lm-eval's requests for the task files of tests/fixtures/lmeval-tasks through chat
templates (`--apply_chat_template`), for tests/lmeval_tasks.rs.

For each template of tests/fixtures/chat/templates (model-shaped templates written for the
tests: Llama 3's header tokens, Qwen's <|im_start|> turns, Gemma's system folded into the
first user turn, Mistral's alternation check with raise_exception) and each way lm-eval's
flags combine (`single`: the few-shot examples folded into one user turn; `system`: with
`--system_instruction`; `multiturn`: and `--fewshot_as_multiturn`), lm-eval 0.4.13 builds every
fixture task's requests (two shots, the first three documents, seed 1234) with
`build_all_requests(apply_chat_template=True, ...)`. The template is applied as lm-eval's
`HFLM.apply_chat_template` applies it: transformers' `apply_chat_template(tokenize=False,
add_generation_prompt=..., continue_final_message=not add_generation_prompt)` on a tokenizer
with bos `<|begin_of_text|>`, eos `<|eot_id|>` and pad `<pad>`, again without the system turn
when the template raises. The results go to tests/fixtures/lmeval_chat_reference.json.

Then, for all of NorEval's tasks (lm-eval 0.4.13's `tasks/noreval`, on the local datasets
tools/lmeval/noreval_requests.py writes), the first document's requests through the Llama 3
template with the system instruction, one shot and the shots as turns of their own, to
tests/fixtures/lmeval_noreval_chat_reference.json (regenerate it when that script's datasets
change).

Usage (lm-eval 0.4.13 and transformers 5, no PyTorch needed; from the repository root):

    pip install lm-eval==0.4.13 transformers==5.25.0
    python tools/lmeval/chat_reference.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import jinja2
import lm_eval
import transformers
from lm_eval.tasks import TaskManager, get_task_dict
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "tests/fixtures/lmeval-tasks"
TEMPLATES = ROOT / "tests/fixtures/chat/templates"
TOKENIZER = ROOT / "worker/engine/assets/tokenizer-nb-bpe.json"
OUT = ROOT / "tests/fixtures/lmeval_chat_reference.json"
NOREVAL_OUT = ROOT / "tests/fixtures/lmeval_noreval_chat_reference.json"

SHOTS, LIMIT, SEED = 2, 3, 1234
SYSTEM = "Du er en hjelpsom assistent. Svar kort."
CASES = {"single": (None, False), "system": (SYSTEM, False), "multiturn": (SYSTEM, True)}


def hflm_chat(tok, template):
    """lm-eval's `HFLM.apply_chat_template` with `template` as the tokenizer's."""

    def apply(history, add_generation_prompt=True):
        def render(h):
            return tok.apply_chat_template(h, chat_template=template, tokenize=False,
                                           add_generation_prompt=add_generation_prompt,
                                           continue_final_message=not add_generation_prompt)

        try:
            return render(history)
        except jinja2.exceptions.TemplateError:
            return render([m for m in history if m["role"] != "system"])

    return apply


def build(task, system, multiturn, chat, shots=SHOTS, limit=LIMIT):
    if task.get_config("num_fewshot") != 0:
        task.set_config(key="num_fewshot", value=shots)
    task.set_fewshot_seed(seed=SEED)
    task.build_all_requests(limit=limit, rank=0, world_size=1, apply_chat_template=True,
                            fewshot_as_multiturn=multiturn, system_instruction=system,
                            chat_template=chat)
    return [{"doc_id": i.doc_id, "idx": i.idx, "request_type": i.request_type,
             "arguments": list(i.arguments)} for i in task.instances]


def main() -> None:
    os.chdir(TASKS)  # the task files' data_files are relative to it, as for the other tests
    tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER), bos_token="<|begin_of_text|>",
                                  eos_token="<|eot_id|>", pad_token="<pad>")
    manager = TaskManager(include_path=str(TASKS))
    names = sorted(manager.all_subtasks)
    names = [n for n in names if n.startswith("nlebench_test_")]
    requests = {}
    for path in sorted(TEMPLATES.glob("*.jinja")):
        if path.stem == "features":
            continue  # a template of Jinja features, not of a model
        chat = hflm_chat(tok, path.read_text(encoding="utf-8"))
        for case, (system, multiturn) in CASES.items():
            for name in names:
                key = f"{path.stem}/{case}/{name}"
                task = get_task_dict([name], manager)[name]
                try:
                    requests[key] = build(task, system, multiturn, chat)
                except Exception as e:  # noqa: BLE001 - recorded, and nlebench must refuse too
                    requests[key] = {"error": f"{type(e).__name__}: {e}"}
    reference = {
        "shots": SHOTS, "limit": LIMIT, "seed": SEED, "system_instruction": SYSTEM,
        "special_tokens": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<pad>"},
        "requests": requests,
        "versions": {"lm_eval": lm_eval.__version__, "transformers": transformers.__version__,
                     "jinja2": jinja2.__version__, "python": sys.version.split()[0]},
    }
    OUT.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    errors = sum("error" in r for r in requests.values() if isinstance(r, dict))
    print(f"{len(requests)} task builds, {errors} failed: {OUT}")
    noreval(tok)


def noreval(tok):
    """NorEval's tasks on noreval_requests.py's datasets, through the Llama 3 template."""
    sys.path.insert(0, str(Path(__file__).parent))
    import noreval_requests  # its stand-ins for what NorEval imports only to score

    with tempfile.TemporaryDirectory() as out:
        names = sorted(noreval_requests.write_tasks(Path(out)))
        manager = TaskManager(include_path=str(Path(out) / "tasks"))
        chat = hflm_chat(tok, (TEMPLATES / "llama3.jinja").read_text(encoding="utf-8"))
        requests = {}
        for name in names:
            task = get_task_dict([name], manager)[name]
            try:
                requests[name] = build(task, SYSTEM, True, chat, shots=1, limit=1)
            except Exception as e:  # noqa: BLE001 - recorded, and nlebench must refuse too
                requests[name] = {"error": f"{type(e).__name__}: {e}"}
    reference = {
        "template": "llama3", "shots": 1, "limit": 1, "seed": SEED, "system_instruction": SYSTEM,
        "fewshot_as_multiturn": True,
        "special_tokens": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<pad>"},
        "requests": requests,
        "versions": {"lm_eval": lm_eval.__version__, "transformers": transformers.__version__,
                     "jinja2": jinja2.__version__, "python": sys.version.split()[0]},
    }
    NOREVAL_OUT.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    errors = sum("error" in r for r in requests.values() if isinstance(r, dict))
    print(f"NorEval: {len(requests)} tasks, {errors} failed: {NOREVAL_OUT}")


if __name__ == "__main__":
    main()
