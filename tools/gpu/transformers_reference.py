"""transformers on the workload `nlebench-dev bench device --workload-out FILE` wrote: the
same model folder (the same weights), the same scored texts and generation prompts (token
ids), the same dtype, batch sizes and repetitions, on the same device. The reference of the
GPU check's benchmark table (tools/gpu/check.sh, tools/gpu/report.py).

    python3 tools/gpu/transformers_reference.py WORKLOAD.json [--device cuda] [--attn sdpa] [--out OUT.json]

- Scoring: the texts in consecutive batches of the workload's size, right-padded, with an
  attention mask; each text's mean token log-likelihood (its perplexity), as the engine's
  `perplexities_of_ids` computes it.
- Generation: each batch of equal-length prompts through `model.generate` with greedy
  decoding and exactly `new_tokens` new tokens (`min_new_tokens`, as the engine suppresses
  EOS); batch 1 is the authors' one-prompt-at-a-time loop.
- Times: the median of `repeats` timed runs after one warm-up, synchronised on the device.

Writes one JSON object with the keys of `bench device --json` that the report compares (to
OUT.json, or standard output).
"""

import argparse
import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(repeats: int, device: str, f) -> float:
    f()
    sync(device)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        sync(device)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def perplexities(model, texts, batch: int, device: str):
    out = []
    for i in range(0, len(texts), batch):
        chunk = texts[i : i + batch]
        width = max(len(t) for t in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, t in enumerate(chunk):
            ids[r, : len(t)] = torch.tensor(t)
            mask[r, : len(t)] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        tok = logp.gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]
        nll = -tok.sum(-1) / mask[:, 1:].sum(-1)
        out.extend(torch.exp(nll).tolist())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", help="the JSON `bench device --workload-out` wrote")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--attn", default="sdpa", help="transformers' attn_implementation")
    ap.add_argument("--out", help="write the JSON here instead of standard output")
    a = ap.parse_args()
    w = json.load(open(a.workload))
    dtype = DTYPES[w["dtype"]]
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(w["model_dir"], dtype=dtype, attn_implementation=a.attn)
    model = model.to(a.device).eval()
    sync(a.device)
    load_s = time.perf_counter() - t

    texts, batch, repeats = w["scoring"]["texts"], w["scoring"]["batch"], w["repeats"]
    score_s = timed(repeats, a.device, lambda: perplexities(model, texts, batch, a.device))
    generation = []
    n = w["new_tokens"]
    for g in w["generation"]:
        ids = torch.tensor(g["prompts"], dtype=torch.long, device=a.device)
        mask = torch.ones_like(ids)

        def run():
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=False,
                    max_new_tokens=n,
                    min_new_tokens=n,
                    pad_token_id=model.config.eos_token_id or 0,
                )
            assert out.shape[1] == ids.shape[1] + n, out.shape

        secs = timed(repeats, a.device, run)
        generation.append({"batch": g["batch"], "seconds": secs, "tokens_per_s": g["batch"] * n / secs})
    peak = None
    if a.device.startswith("cuda"):
        peak = (torch.cuda.max_memory_allocated() - before) / 1048576
    report = json.dumps(
        {
            "model": w["model"],
            "dtype": w["dtype"],
            "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
            "attn": a.attn,
            "torch": torch.__version__,
            "transformers": sys.modules["transformers"].__version__,
            "load_seconds": load_s,
            "scoring": {"texts": len(texts), "batch": batch, "seconds": score_s, "sentences_per_s": len(texts) / score_s},
            "generation": generation,
            "peak_device_mib": peak,
        }
    )
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")
    else:
        print(report)


if __name__ == "__main__":
    main()
