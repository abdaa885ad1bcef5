#!/usr/bin/env python3
"""Continuous-batching benchmark: nlebench against transformers' static batches and the
authors' one-prompt-at-a-time loop, in one session.

Workload (bench-out/continuous_inputs.json, token ids): 64 prompts of 16–128 tokens cut from
tools/parity/nb_corpus.txt, each with its own number of new tokens drawn from a seeded
long-tailed (Pareto, alpha 0.8) distribution between 8 and 200, standing in for where EOS
would end it; EOS is suppressed so that every engine generates exactly that many. Greedy, f32,
the NorGPT-369M-shaped random-weight model of engine_reference.py, 2 threads.

- nlebench: `nlebench-dev bench engine --phase continuous` (16 rows in flight; a row leaves
  at its limit and the next prompt takes its slot).
- transformers, static batches: prompts sorted by length, batches of 16 left-padded, each
  batch generating as many tokens as its longest row needs (then each row is cut to its own
  limit): what `generate` does with a batch.
- transformers, one at a time: each prompt alone with its own limit, as the authors'
  generation script loops.

New tokens/s counts each row's own tokens only (the sum of the limits). The outputs of all
three are compared token for token. Each engine runs in a fresh process, alternating, with one
untimed warm-up of a few prompts first.

Usage (from the repository root; needs a venv with torch and transformers):
  cargo build --release -p nlebench -p nlebench-devtools
  python tools/bench/engine_reference.py --rounds 1 --repeats 1   # once: makes the model
  python tools/bench/continuous_reference.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import cpu_model, write_section  # noqa: E402
from engine_reference import ROOT, THREADS, run_json, sentences  # noqa: E402

PROMPTS, SLOTS, LOW, HIGH, ALPHA, SEED = 64, 16, 8, 200, 0.8, 12


def workload(tok_path: Path) -> dict:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tok_path))
    stream = [t for line in sentences() for t in tok.encode(line + " ", add_special_tokens=False).ids]
    rng = random.Random(SEED)
    prompts, limits, at = [], [], 0
    for _ in range(PROMPTS):
        n = rng.randint(16, 128)
        if at + n > len(stream):
            at = 0
        prompts.append(stream[at:at + n])
        at += n
        limits.append(min(HIGH, int(LOW * (1.0 - rng.random()) ** (-1.0 / ALPHA))))
    return {"prompt_ids": prompts, "max_new_tokens": limits, "slots": SLOTS}


def measure(model_dir: Path, inputs: Path, mode: str) -> dict:
    """transformers on the workload in this process (call in a fresh one)."""
    import torch
    import transformers
    from transformers import GPT2LMHeadModel
    torch.set_num_threads(int(THREADS))
    w = json.loads(inputs.read_text())
    model = GPT2LMHeadModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    prompts, limits = w["prompt_ids"], w["max_new_tokens"]

    def batch(idx: list[int]) -> list[list[int]]:
        width = max(len(prompts[i]) for i in idx)
        ids = torch.tensor([[0] * (width - len(prompts[i])) + prompts[i] for i in idx])
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx])
        n = max(limits[i] for i in idx)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                                 min_new_tokens=n, pad_token_id=0, eos_token_id=0)
        return [out[r, width:width + limits[i]].tolist() for r, i in enumerate(idx)]

    def run(which: list[int]) -> list:
        out = [None] * len(prompts)
        if mode == "static":
            order = sorted(which, key=lambda i: len(prompts[i]))
            for s in range(0, len(order), w["slots"]):
                chunk = order[s:s + w["slots"]]
                for i, toks in zip(chunk, batch(chunk)):
                    out[i] = toks
        else:
            for i in which:
                out[i] = batch([i])[0]
        return out

    with torch.no_grad():  # warm-up: two tokens for one prompt
        model.generate(torch.tensor([prompts[0]]), do_sample=False, max_new_tokens=2, min_new_tokens=2,
                       pad_token_id=0, eos_token_id=0)
    start = time.perf_counter()
    output = run(list(range(len(prompts))))
    secs = time.perf_counter() - start
    return {"engine": f"transformers-{mode}", "median": sum(limits) / secs, "rates": [sum(limits) / secs],
            "seconds": [secs], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "output": output}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--rounds", type=int, default=1, help="alternating process triples")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/nlebench-dev")
    ap.add_argument("--measure", choices=["static", "alone"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = args.out / "norgpt-369m-random"
    inputs = args.out / "continuous_inputs.json"
    if args.measure:
        print(json.dumps(measure(model, inputs, args.measure)))
        return
    if not (model / "model.safetensors").exists():
        sys.exit(f"no model at {model}: run tools/bench/engine_reference.py once first")
    w = workload(model / "tokenizer.json")
    inputs.write_text(json.dumps(w))
    results: dict[str, list] = {"nlebench": [], "transformers-static": [], "transformers-alone": []}
    for r in range(args.rounds):
        results["nlebench"].append(run_json([str(args.binary), "bench", "engine", "--model", str(model),
                                             "--inputs", str(inputs), "--phase", "continuous",
                                             "--repeats", "1", "--json"]))
        for mode in ("static", "alone"):
            results[f"transformers-{mode}"].append(
                run_json([sys.executable, __file__, "--measure", mode, "--out", str(args.out)]))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]['median']:.2f}" for k, v in results.items()),
              file=sys.stderr)
    ours = results["nlebench"][-1]["output"]
    agreement = {k: sum(a == b for a, b in zip(ours, v[-1]["output"])) for k, v in results.items() if k != "nlebench"}
    (args.out / "continuous_results.json").write_text(json.dumps(results, indent=1))
    write_markdown(w, results, agreement, args)


def write_markdown(w: dict, results: dict, agreement: dict, args) -> None:
    med = {k: statistics.median(x for r in v for x in r["rates"]) for k, v in results.items()}
    rng = {k: (min(x for r in v for x in r["rates"]), max(x for r in v for x in r["rates"])) for k, v in results.items()}
    rss = {k: max(r["peak_rss_mib"] for r in v) for k, v in results.items()}
    secs = {k: statistics.median(x for r in v for x in r["seconds"]) for k, v in results.items()}
    versions = results["transformers-static"][0]["versions"]
    limits = w["max_new_tokens"]
    n = len(limits)
    static_steps = 0
    order = sorted(range(n), key=lambda i: len(w["prompt_ids"][i]))
    for s in range(0, n, w["slots"]):
        chunk = order[s:s + w["slots"]]
        static_steps += max(limits[i] for i in chunk) * len(chunk)
    lines = [
        "## Continuous batching (issue 12)",
        "",
        f"Measured on {cpu_model()} ({os.cpu_count()} cores, Linux {platform.release()}), {THREADS} threads, "
        f"f32, greedy, NorGPT-369M shape with random weights; transformers {versions['transformers']}, "
        f"torch {versions['torch']}, Python {platform.python_version()}; {len(results['nlebench'])} alternating "
        "round(s), each engine in a fresh process, one timed run each (after a warm-up).",
        "",
        f"Workload: {n} prompts of {min(map(len, w['prompt_ids']))}–{max(map(len, w['prompt_ids']))} tokens, "
        f"each with its own number of new tokens from a seeded long-tailed distribution between {LOW} and "
        f"{HIGH} (Pareto, alpha {ALPHA}; median {statistics.median(limits):.0f}, mean {statistics.mean(limits):.1f}, "
        f"{sum(limits)} in all), EOS suppressed. Static batches of {w['slots']} (sorted by prompt length) "
        f"compute {static_steps} row-steps for those {sum(limits)} tokens; nlebench keeps {w['slots']} rows in "
        "flight and computes only the rows' own tokens.",
        "",
        "Command: `cargo build --release -p nlebench -p nlebench-devtools && python tools/bench/continuous_reference.py "
        f"--rounds {len(results['nlebench'])}`.",
        "",
        "| engine | new tokens/s | seconds | ratio of nlebench to it | peak RSS | outputs equal to nlebench's |",
        "|---|---|---|---|---|---|",
    ]
    names = {"nlebench": f"nlebench, continuous batching ({w['slots']} in flight)",
             "transformers-static": f"transformers `generate`, static batches of {w['slots']}",
             "transformers-alone": "transformers `generate`, one prompt at a time (the authors' loop)"}
    for k in results:
        ratio = "" if k == "nlebench" else f"{med['nlebench'] / med[k]:.2f}×"
        agree = "" if k == "nlebench" else f"{agreement[k]}/{n}"
        lines.append(f"| {names[k]} | {med[k]:.2f} [{rng[k][0]:.2f}–{rng[k][1]:.2f}] | {secs[k]:.1f} | {ratio} "
                     f"| {rss[k]:.0f} MiB | {agree} |")
    lines += ["", "Issue 12 asks for ≥ 2× transformers' static batches in new tokens/s."]
    section = "\n".join(lines) + "\n"
    write_section("Continuous batching (issue 12)", section)
    print(section)


if __name__ == "__main__":
    main()
