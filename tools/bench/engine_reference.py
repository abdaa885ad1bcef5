#!/usr/bin/env python3
"""Engine benchmark: the workload, transformers' numbers on it, and nlebench's, in one session.

1. Makes (once) the NorGPT-369M-shaped random-weight model with
   `nlebench models random --preset norgpt-369m --seed 0` (24 layers, 1024 hidden, 64,000 vocab, f32).
2. Writes the workload as token ids (bench-out/bench_inputs.json): 200 Norwegian sentences for
   perplexity (batch 16) and 8 prompts of 100 tokens for greedy generation of 64 new tokens,
   built from tools/parity/nb_corpus.txt and experiments/data/no-crows-pairs-mini.csv.
3. Measures, alternating engine and reference so that machine noise hits both alike, each in a
   fresh process with 2 threads: transformers (`python engine_reference.py --measure PHASE`) and
   `nlebench-dev bench engine --phase PHASE`. Each process does one warm-up run and --repeats timed runs.
4. Checks both give the same perplexities (relative 1e-4) and the same greedy tokens, and writes
   the table with ratios to BENCHMARKS.md (section "Engine").

Usage (from the repository root; needs a venv with torch and transformers):
  cargo build --release -p nlebench -p nlebench-devtools
  python tools/bench/engine_reference.py [--rounds 3] [--repeats 3] [--out bench-out] [--dtype f32|bf16|f16]

With --dtype bf16 or f16 both engines load the model in that dtype (transformers as torch's
bfloat16/float16, nlebench with `--dtype`), perplexities are compared to 2e-2 relative (half
precision's rounding differs between the two), and the table goes to its own section of
BENCHMARKS.md ("Engine in bf16 (issue 31)", …).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks_md import cpu_model, write_section  # noqa: E402 (tools/bench is on sys.path)

ROOT = Path(__file__).resolve().parents[2]
THREADS = "2"


def sentences() -> list[str]:
    lines = [l.strip() for l in (ROOT / "tools/parity/nb_corpus.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    with open(ROOT / "experiments/data/no-crows-pairs-mini.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            lines += [row["sent_more_no"], row["sent_less_no"]]
    return list(dict.fromkeys(lines))


def workload(tok_path: Path, sentences_n: int = 200, new_tokens: int = 64) -> dict:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tok_path))
    s = sentences()
    enc = lambda t: tok.encode(t, add_special_tokens=False).ids
    ppl = [enc(s[i % len(s)] + " " + s[(i * 7 + 3) % len(s)]) for i in range(sentences_n)]
    stream = [t for line in s for t in enc(line + " ")]
    prompts = [stream[i * 100:(i + 1) * 100] for i in range(8)]
    return {"ppl_token_ids": ppl, "ppl_batch_size": 16, "gen_prompt_ids": prompts, "gen_new_tokens": new_tokens}


TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def measure(model_dir: Path, inputs: Path, phase: str, repeats: int, dtype: str = "f32") -> dict:
    """transformers on the workload, in this process (call in a fresh one)."""
    import torch
    import transformers
    from transformers import GPT2LMHeadModel
    torch.set_num_threads(int(THREADS))
    w = json.loads(inputs.read_text())
    t0 = time.perf_counter()
    model = GPT2LMHeadModel.from_pretrained(str(model_dir), dtype=getattr(torch, TORCH_DTYPES[dtype])).eval()
    load = time.perf_counter() - t0
    loss = torch.nn.CrossEntropyLoss(reduction="none")

    def ppl_run():
        out = []
        ids = w["ppl_token_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        res = [None] * len(ids)
        for start in range(0, len(order), w["ppl_batch_size"]):
            chunk = order[start:start + w["ppl_batch_size"]]
            t = max(len(ids[i]) for i in chunk) + 1
            batch = torch.zeros((len(chunk), t), dtype=torch.long)
            mask = torch.zeros((len(chunk), t), dtype=torch.long)
            for r, i in enumerate(chunk):
                seq = [0] + ids[i]
                batch[r, :len(seq)] = torch.tensor(seq)
                mask[r, :len(seq)] = 1
            with torch.no_grad():
                logits = model(batch, attention_mask=mask).logits
            nll = loss(logits[:, :-1].float().transpose(1, 2), batch[:, 1:]) * mask[:, 1:]
            p = torch.exp(nll.sum(1) / mask[:, 1:].sum(1))
            for r, i in enumerate(chunk):
                res[i] = float(p[r])
        return res

    def gen_run():
        ids = torch.tensor(w["gen_prompt_ids"])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=w["gen_new_tokens"], min_new_tokens=w["gen_new_tokens"],
                                 pad_token_id=0, eos_token_id=0)
        return out[:, ids.shape[1]:].tolist()

    run = ppl_run if phase == "ppl" else gen_run
    output, secs = None, []
    for i in range(repeats + 1):
        start = time.perf_counter()
        output = run()
        if i > 0:
            secs.append(time.perf_counter() - start)
    work = len(w["ppl_token_ids"]) if phase == "ppl" else len(w["gen_prompt_ids"]) * w["gen_new_tokens"]
    rates = [work / s for s in secs]
    return {"engine": "transformers", "phase": phase, "median": statistics.median(rates), "rates": rates,
            "seconds": secs, "load_seconds": load,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "output": output}


def run_json(cmd: list[str]) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=THREADS, OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS,
               NLEBENCH_DEVICE="cpu")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--rounds", type=int, default=3, help="alternating engine/reference process pairs per phase")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per process")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/nlebench-dev")
    ap.add_argument("--nlebench", type=Path, default=ROOT / "target/release/nlebench")
    ap.add_argument("--report-only", action="store_true", help="rewrite BENCHMARKS.md from OUT/engine_results.json")
    ap.add_argument("--dtype", choices=list(TORCH_DTYPES), default="f32", help="dtype both engines run in")
    ap.add_argument("--sentences", type=int, default=200, help="perplexity sentences (fewer where the reference is slow)")
    ap.add_argument("--new-tokens", type=int, default=64, help="greedy new tokens per prompt")
    ap.add_argument("--measure", choices=["ppl", "gen"], help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.model, args.out / "bench_inputs.json", args.measure, args.repeats, args.dtype)))
        return

    if args.report_only:
        write_markdown(json.loads((args.out / results_file(args.dtype)).read_text()), args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.out / "norgpt-369m-random"
    if not (model / "model.safetensors").exists():
        subprocess.run([str(args.nlebench), "models", "random", "--preset", "norgpt-369m", "--seed", "0",
                        "--out", str(model)], check=True)
    inputs = args.out / "bench_inputs.json"
    inputs.write_text(json.dumps(workload(model / "tokenizer.json", args.sentences, args.new_tokens)))

    results = {p: {"nlebench": [], "transformers": []} for p in ("ppl", "ppl-padded", "gen")}
    for phase in ("ppl", "gen"):
        for r in range(args.rounds):
            ours = run_json([str(args.binary), "bench", "engine", "--model", str(model), "--inputs", str(inputs),
                             "--phase", phase, "--repeats", str(args.repeats), "--json", "--dtype", args.dtype])
            ref = run_json([sys.executable, __file__, "--measure", phase, "--model", str(model),
                            "--out", str(args.out), "--repeats", str(args.repeats), "--dtype", args.dtype])
            results[phase]["nlebench"].append(ours)
            results[phase]["transformers"].append(ref)
            print(f"{phase} round {r + 1}: nlebench {ours['median']:.2f} vs transformers {ref['median']:.2f}",
                  file=sys.stderr)
            if phase == "ppl":
                padded = run_json([str(args.binary), "bench", "engine", "--model", str(model), "--inputs",
                                   str(inputs), "--phase", phase, "--repeats", str(args.repeats), "--json",
                                   "--layout", "right-padded", "--dtype", args.dtype])
                results["ppl-padded"]["nlebench"].append(padded)
                results["ppl-padded"]["transformers"].append(ref)
                print(f"ppl round {r + 1}: nlebench right-padded {padded['median']:.2f}", file=sys.stderr)
        ours, ref = results[phase]["nlebench"][-1]["output"], results[phase]["transformers"][-1]["output"]
        if phase == "ppl":
            worst = max(abs(a - b) / b for a, b in zip(ours, ref))
            limit = 1e-4 if args.dtype == "f32" else 2e-2
            assert worst < limit, f"perplexities differ: {worst}"
            results[phase]["agreement"] = f"perplexities equal within {worst:.1e} relative"
            same = results["ppl-padded"]["nlebench"][-1]["output"] == ours
            results["ppl-padded"]["agreement"] = ("bitwise equal to packed" if same
                                                  else "DIFFERENT from packed")
        else:
            same = sum(a == b for a, b in zip(ours, ref))
            results[phase]["agreement"] = f"{same}/{len(ref)} greedy continuations token-identical"
    (args.out / results_file(args.dtype)).write_text(json.dumps(results, indent=1))
    write_markdown(results, args)


def results_file(dtype: str) -> str:
    return "engine_results.json" if dtype == "f32" else f"engine_results_{dtype}.json"


def section_title(dtype: str) -> str:
    return "Engine (issue 3)" if dtype == "f32" else f"Engine in {dtype} (issue 31)"


def summary(runs: list[dict]) -> tuple[float, float, float, float]:
    rates = [x for r in runs for x in r["rates"]]
    return statistics.median(rates), min(rates), max(rates), max(r["peak_rss_mib"] for r in runs)


def write_markdown(results: dict, args) -> None:
    ref_versions = results["ppl"]["transformers"][0]["versions"]
    rounds = len(results["ppl"]["nlebench"])
    repeats = len(results["ppl"]["nlebench"][0]["rates"])
    n_sent = len(results["ppl"]["nlebench"][0]["output"])
    n_new = len(results["gen"]["nlebench"][0]["output"][0]) if results.get("gen", {}).get("nlebench") else 64
    lines = [
        f"## {section_title(args.dtype)}",
        "",
        f"Measured on {cpu_model()} ({os.cpu_count()} cores, Linux {platform.release()}), "
        f"{THREADS} threads for both engines, {args.dtype}, NorGPT-369M shape with random weights "
        f"(24 layers, 1024 hidden, 64,000 vocab); transformers {ref_versions['transformers']}, "
        f"torch {ref_versions['torch']}, Python {platform.python_version()}. "
        f"{rounds} alternating process pairs × {repeats} timed runs each (after one warm-up); "
        "the median over all runs, the range in brackets. Peak RSS is the largest of the processes "
        f"(model load included). CPU GEMM kernels of nlebench: {results['ppl']['nlebench'][0].get('gemm_kernels', 'not recorded')}.",
        "",
        "Command: `cargo build --release -p nlebench -p nlebench-devtools && python tools/bench/engine_reference.py "
        f"--rounds {rounds} --repeats {repeats}" + ("" if args.dtype == "f32" else f" --dtype {args.dtype}")
        + ("" if n_sent == 200 else f" --sentences {n_sent}") + ("" if n_new == 64 else f" --new-tokens {n_new}")
        + "` (with no other load on the machine).",
        "",
        "| workload | nlebench | transformers | ratio | peak RSS nlebench | peak RSS transformers | outputs |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"ppl": f"perplexity, {n_sent} sentences, batch 16, packed rows (the default) (sentences/s)",
             "ppl-padded": "perplexity, the same, right-padded rows (sentences/s)",
             "gen": f"greedy, 8 × 100-token prompts, {n_new} new tokens (new tokens/s)"}
    for phase in [p for p in ("ppl", "ppl-padded", "gen") if results.get(p, {}).get("nlebench")]:
        o, t = summary(results[phase]["nlebench"]), summary(results[phase]["transformers"])
        lines.append(f"| {names[phase]} | {o[0]:.2f} [{o[1]:.2f}–{o[2]:.2f}] | {t[0]:.2f} [{t[1]:.2f}–{t[2]:.2f}] "
                     f"| {o[0] / t[0]:.2f}× | {o[3]:.0f} MiB | {t[3]:.0f} MiB | {results[phase]['agreement']} |")
    if args.dtype == "f32":
        lines += ["", "Ratio = nlebench / transformers (higher is better for throughput). Issue 3 asks for "
                  "≥ 1.0× (1.5× aspired) and peak memory ≤ transformers'."]
    else:
        lines += ["", f"Ratio = nlebench / transformers, both in {args.dtype} (higher is better). nlebench keeps "
                  f"the linear layers' weights in {args.dtype} in its packed panels, widens them to f32 in the "
                  "kernel and sums in f32 (one ordered FMA chain per output), attends in f32 "
                  "(nlebench-attention) and rounds each layer's outputs back to the dtype; transformers runs "
                  "torch's CPU kernels in that dtype. Issue 31 asks for ≥ 1.5× in bf16 and peak memory ≤ "
                  "transformers'."]
    section = "\n".join(lines) + "\n"
    write_section(section_title(args.dtype), section)
    print(section)


if __name__ == "__main__":
    main()
