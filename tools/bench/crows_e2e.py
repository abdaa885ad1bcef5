#!/usr/bin/env python3
"""The whole NO-CrowS-Pairs task end to end (issue 12): `nlebench run` against the authors' way.

nlebench: a one-task sweep (all 1,677 pairs of ../shared/data/norglm-results/bias/
crows_pairs_norwegian.csv, batch size 16) run with `nlebench run` on the embedded default (SQLite
store and queue in a fresh data directory, in-process worker, results and samples stored). The
wall time covers the whole command: planning, model load, scoring, metrics, storing.

The authors' way: Hugging Face `evaluate`'s perplexity metric, as their bias script calls it on
each sentence list (the 1,677 `sent_more_no`, then the 1,677 `sent_less_no`), batch 16, start
token added. `evaluate.load("perplexity")` fetches the metric's code from the Hub, which this
machine cannot reach, so `authors_perplexities` below repeats that code's steps: the whole list
tokenized at once and padded to its longest sentence, the start token prepended, a
cross-entropy over every position, masked. The wall time covers the whole process: imports,
model load, both lists.

Both use the same random-weight NorGPT-369M-shaped model (bench-out/norgpt-369m-random, from
engine_reference.py), f32, 2 threads, in fresh processes. The per-pair perplexities are compared
(relative 1e-4), and the section "NO-CrowS-Pairs end to end (issue 12)" of BENCHMARKS.md is
written.

With --lmeval, the other side is lm-evaluation-harness instead: its Hugging Face model (`HFLM`,
batch 16, f32, CPU) on `loglikelihood_rolling` requests for every sentence, which put the
tokenizer's BOS token before the text as the start token; perplexity = exp(−log-likelihood /
tokens). That writes the section "NO-CrowS-Pairs end to end: lm-evaluation-harness (issue 12)".

Usage (from the repository root; a venv with torch and transformers, and for --lmeval
lm-eval and accelerate):
  cargo build --release -p nlebench
  python tools/bench/crows_e2e.py [--rounds 1] [--lmeval] [--write]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import cpu_model, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
THREADS = "2"
CSV = ROOT.parent / "shared/data/norglm-results/bias/crows_pairs_norwegian.csv"
ENV = dict(os.environ, RAYON_NUM_THREADS=THREADS, OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS,
           NLEBENCH_DEVICE="cpu")


def timed(cmd: list[str], **kw) -> tuple[float, float]:
    """Run `cmd`; its wall seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=ENV, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024


def run_nlebench(binary: Path, model: Path) -> tuple[float, float, list[tuple[float, float]]]:
    """`nlebench run` of the whole task in a fresh data directory; per-pair perplexities."""
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "crows.toml"
        sweep.write_text(
            'name = "crows-e2e"\n'
            'description = "NO-CrowS-Pairs end to end (tools/bench/crows_e2e.py)"\n'
            'tasks = ["no-crows-pairs"]\nseeds = [0]\nshard_size = 256\n\n'
            f'[datasets]\nno-crows-pairs = "path:{CSV}"\n\n'
            f'[[models]]\nname = "norgpt-369m-random"\nsource = "path:{model}"\n\n'
            '[[settings]]\nname = "batch-16"\nbatch_size = 16\n')
        data = Path(tmp) / "data"
        seconds, rss = timed([str(binary), "run", str(sweep), "--data-dir", str(data),
                              "--tasks-dir", str(ROOT / "experiments/tasks")],
                             stdout=subprocess.DEVNULL)
        db = sqlite3.connect(data / "nlebench.sqlite")
        rows = db.execute("SELECT s.idx, s.data FROM samples s JOIN runs r ON r.id = s.run_id "
                          "ORDER BY s.idx").fetchall()
        perps = [(json.loads(d)["perp_more"], json.loads(d)["perp_less"]) for _, d in rows]
    return seconds, rss, perps


def authors_perplexities(model_dir: str, predictions: list[str], batch_size: int = 16) -> list[float]:
    """`evaluate`'s perplexity metric (add_start_token=True, no max_length), step by step."""
    import torch
    from torch.nn import CrossEntropyLoss
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None and batch_size > 1:
        tokenizer.add_special_tokens({"pad_token": tokenizer.bos_token})
    encodings = tokenizer(predictions, add_special_tokens=False, padding=True, truncation=False,
                          return_tensors="pt", return_attention_mask=True)
    encoded_texts, attn_masks = encodings["input_ids"], encodings["attention_mask"]
    ppls: list[float] = []
    loss_fct = CrossEntropyLoss(reduction="none")
    for start in range(0, len(encoded_texts), batch_size):
        encoded_batch = encoded_texts[start:start + batch_size]
        attn_mask = attn_masks[start:start + batch_size]
        bos = torch.tensor([[tokenizer.bos_token_id]] * encoded_batch.size(dim=0))
        encoded_batch = torch.cat([bos, encoded_batch], dim=1)
        attn_mask = torch.cat([torch.ones(bos.size(), dtype=torch.int64), attn_mask], dim=1)
        labels = encoded_batch
        with torch.no_grad():
            out_logits = model(encoded_batch, attention_mask=attn_mask).logits
        shift_logits = out_logits[..., :-1, :].contiguous()
        shift_labels = labels[..., 1:].contiguous()
        shift_mask = attn_mask[..., 1:].contiguous()
        batch_ppl = torch.exp((loss_fct(shift_logits.transpose(1, 2), shift_labels) * shift_mask).sum(1)
                              / shift_mask.sum(1))
        ppls += batch_ppl.tolist()
    return ppls


def authors_main(model: str, out: str) -> None:
    """The authors' way in this process (called in a fresh one by `run_reference`)."""
    import torch
    torch.set_num_threads(int(THREADS))
    rows = list(csv.DictReader(open(CSV, encoding="utf-8")))
    more = authors_perplexities(model, [r["sent_more_no"] for r in rows])
    less = authors_perplexities(model, [r["sent_less_no"] for r in rows])
    import transformers
    Path(out).write_text(json.dumps({"perps": list(zip(more, less)), "versions": {
        "torch": torch.__version__, "transformers": transformers.__version__}}))


def lmeval_main(model: str, out: str) -> None:
    """lm-evaluation-harness's `loglikelihood_rolling` on every sentence, in this process."""
    import torch
    torch.set_num_threads(int(THREADS))
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    lm = HFLM(pretrained=model, device="cpu", dtype="float32", batch_size=16)
    rows = list(csv.DictReader(open(CSV, encoding="utf-8")))
    texts = [r["sent_more_no"] for r in rows] + [r["sent_less_no"] for r in rows]
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i)
                for i, t in enumerate(texts)]
    lls = lm.loglikelihood_rolling(requests, disable_tqdm=True)
    perps = [math.exp(-ll / len(lm.tok_encode(t))) for ll, t in zip(lls, texts)]
    import transformers
    Path(out).write_text(json.dumps({"perps": list(zip(perps[:len(rows)], perps[len(rows):])), "versions": {
        "torch": torch.__version__, "transformers": transformers.__version__, "lm_eval": lm_eval.__version__}}))


def run_reference(model: Path, flag: str) -> tuple[float, float, list[tuple[float, float]], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "perps.json"
        seconds, rss = timed([sys.executable, __file__, flag, str(model), str(out)])
        r = json.loads(out.read_text())
    return seconds, rss, [tuple(p) for p in r["perps"]], r["versions"]


def largest_relative(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    assert len(a) == len(b), f"{len(a)} vs {len(b)} pairs"
    return max(abs(x - y) / abs(y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--authors":
        authors_main(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--lmeval-process":
        lmeval_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "bench-out/norgpt-369m-random")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/nlebench")
    ap.add_argument("--rounds", type=int, default=1, help="alternating nlebench/reference process pairs")
    ap.add_argument("--lmeval", action="store_true", help="lm-evaluation-harness instead of the authors' way")
    ap.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = ap.parse_args()
    if not CSV.exists():
        raise SystemExit(f"{CSV} is missing (it comes with ../shared)")
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        s, rss, perps = run_nlebench(args.binary, args.model)
        ours.append((s, rss))
        print(f"nlebench run: {s:.1f} s, peak RSS {rss:.0f} MiB, {len(perps)} pairs", flush=True)
        s, rss, ref, versions = run_reference(args.model, "--lmeval-process" if args.lmeval else "--authors")
        theirs.append((s, rss))
        print(f"{'lm-eval' if args.lmeval else 'authors'}: {s:.1f} s, peak RSS {rss:.0f} MiB", flush=True)
    rel = largest_relative(perps, ref)
    n = len(perps)
    o, t = statistics.median(x for x, _ in ours), statistics.median(x for x, _ in theirs)
    agree = sum((a > b) == (c > d) for (a, b), (c, d) in zip(perps, ref))
    verdict = "equal within 1e-4 relative" if rel <= 1e-4 else "NOT equal within 1e-4"
    print(f"ratio {t / o:.2f}x; perplexities {verdict} (largest {rel:.1e}); "
          f"pair preference equal in {agree}/{n}")
    if not args.write:
        return
    span = lambda xs: f"{min(xs):.0f}–{max(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"
    if args.lmeval:
        title = "NO-CrowS-Pairs end to end: lm-evaluation-harness (issue 12)"
        label = "lm-evaluation-harness `loglikelihood_rolling` (`HFLM`, batch 16, BOS as start token)"
        tools, flags, why = f"lm-eval {versions['lm_eval']}, ", " --lmeval", ""
    else:
        title = "NO-CrowS-Pairs end to end (issue 12)"
        label = "authors' way (`evaluate` perplexity per sentence list, batch 16, start token)"
        tools, flags = "", ""
        why = (" `evaluate` pads each list to its longest sentence (94 tokens; the mean is 30), so it "
               "runs about four times the positions nlebench's packed rows run (where a pair's common "
               "beginning and the start token are computed once and no last token gets a position), "
               "and it computes the full log-softmax; per position, nlebench's scoring is about as fast "
               "as transformers' (right-padded rows in section \"Engine (issue 3)\").")
    section = "\n".join([
        f"## {title}",
        "",
        f"Measured on {cpu_model()} ({os.cpu_count()} cores, Linux {platform.release()}), {THREADS} threads, "
        f"f32, the NorGPT-369M-shaped random-weight model; {tools}transformers {versions['transformers']}, "
        f"torch {versions['torch']}. {args.rounds} alternating process pair(s); wall seconds of the whole "
        "process (median, range).",
        "",
        "Command: `cargo build --release -p nlebench && python tools/bench/crows_e2e.py "
        f"--rounds {args.rounds}{flags} --write`",
        "",
        "| | wall seconds | pairs/s | peak RSS | ratio |",
        "|---|---|---|---|---|",
        f"| `nlebench run` (embedded store, 1,677 pairs, batch 16, results stored) | {o:.0f} [{span([x for x, _ in ours])}] "
        f"| {n / o:.2f} | {max(r for _, r in ours):.0f} MiB | {t / o:.2f}× |",
        f"| {label} | {t:.0f} [{span([x for x, _ in theirs])}] | {n / t:.2f} "
        f"| {max(r for _, r in theirs):.0f} MiB | 1 |",
        "",
        f"Per-pair perplexities: {verdict} (largest difference {rel:.1e}); the preferred sentence "
        f"agrees in {agree} of {n} pairs.{why}",
        "",
    ])
    write_section(title, section)
    print(section)


if __name__ == "__main__":
    main()
