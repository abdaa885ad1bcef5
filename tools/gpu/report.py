"""Write the "## GPU (issue 13)" section of BENCHMARKS.md from the results of tools/gpu/check.sh.

    python3 tools/gpu/report.py RESULTS_DIR [--print]
"""

import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from benchmarks_md import cpu_model, write_section  # noqa: E402

TITLE = "GPU (issue 13)"


def read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def text(results: Path, name: str):
    path = results / name
    return path.read_text().strip() if path.exists() else None


def bench_rows(b, ref):
    """The engine's row of the benchmark table and, with a transformers run, its row and ratios."""
    gen = {g["batch"]: g for g in b["generation"]}
    rates = " / ".join(f"{gen[k]['tokens_per_s']:.0f}" for k in sorted(gen))
    share = gen.get(1, {}).get("bandwidth_share")
    peak = b.get("peak_device_mib")
    rows = [
        f"| {b['model']} | {b['dtype']} | {b['parameters'] / 1e9:.2f} B | {b['load_seconds']:.1f} | "
        f"{b['scoring']['sentences_per_s']:.0f} | {rates} | "
        f"{'—' if share is None else f'{100 * share:.1f} %'} | {'—' if peak is None else f'{peak:.0f}'} |"
    ]
    if ref:
        rgen = {g["batch"]: g for g in ref["generation"]}
        rrates = " / ".join(
            f"{rgen[k]['tokens_per_s']:.0f} ({gen[k]['tokens_per_s'] / rgen[k]['tokens_per_s']:.2f}×)"
            for k in sorted(gen)
            if k in rgen
        )
        score = ref["scoring"]["sentences_per_s"]
        rpeak = ref.get("peak_device_mib")
        rows.append(
            f"| transformers {ref['transformers']} | {ref['dtype']} | | {ref['load_seconds']:.1f} | "
            f"{score:.0f} ({b['scoring']['sentences_per_s'] / score:.2f}×) | {rrates} | | "
            f"{'—' if rpeak is None else f'{rpeak:.0f}'} |"
        )
    return rows


def main() -> None:
    results = Path(sys.argv[1])
    gpu = text(results, "gpu.txt") or "unknown GPU"
    bw = text(results, "bandwidth.txt")
    command = text(results, "command.txt") or "tools/gpu/check.sh"
    seconds = text(results, "seconds.txt")
    lines = [
        f"## {TITLE}",
        "",
        f"`{command}`{f' ({seconds} s)' if seconds else ''} on {gpu} (name, driver, memory), "
        f"host CPU {text(results, 'host.txt') or cpu_model()}, "
        f"{datetime.date.today().isoformat()}. Random weights (`random:PRESET@1`); workload of "
        "`nlebench-dev bench device`: 512 texts of 32–64 tokens scored in batches of 32; "
        "generation of 64 new tokens (EOS suppressed) after 32-token prompts; median of 2 timed "
        "runs after a warm-up. Peak GPU memory is the driver's count above what was in use before "
        "the model loaded (weights, activations, KV cache and allocator slack)."
        + (f" Measured device-to-device copy bandwidth: {bw} (bytes read + written)." if bw else "")
        + (
            " `nlebench-dev` was built on another machine (`source tools/gpu/toolkit.sh && cargo "
            "build --release --features cuda -p nlebench-devtools`: CUDA 13.0 from PyPI, sm_90) and "
            "run here against this machine's driver and CUDA libraries."
            if "--bin-dir" in command
            else ""
        ),
        "",
    ]
    parity = read(results / "parity.json")
    if parity:
        lines += [
            f"**Parity on {parity['device']}** (`nlebench-dev parity --device cuda:0`): "
            f"{len(parity['checks'])} checks, {parity['failed']} failed. Largest |Δ logit| against "
            "the engine's CPU f32 logits (prompts alone, in a left-padded batch and through the KV "
            "cache), relative to the largest logit for f16/bf16; greedy tokens equal to the CPU's "
            "(12 per prompt).",
            "",
            "| architecture | f32 max abs Δ (vs CPU / vs transformers) | f32 greedy | f16 rel Δ (CPU's own) | bf16 rel Δ (CPU's own) |",
            "| --- | --- | --- | --- | --- |",
        ]
        by = {}
        for c in parity["checks"]:
            by.setdefault(c["arch"], {})[c["dtype"]] = c
        for arch, d in by.items():
            f32, f16, bf16 = d.get("f32"), d.get("f16"), d.get("bf16")
            lines.append(
                f"| {arch} | {f32['max_abs']:.1e} / {f32['max_abs_transformers']:.1e} | "
                f"{f32['greedy_equal']}/{f32['greedy_total']} | "
                f"{f16['max_rel']:.1e} ({f16['cpu_rel']:.1e}) | {bf16['max_rel']:.1e} ({bf16['cpu_rel']:.1e}) |"
            )
        lines.append("")
    benches = [(p, read(p)) for p in sorted(results.glob("bench-*.json"))]
    benches = [(p, b) for p, b in benches if b]
    if benches:
        lines += [
            "| model | dtype | parameters | load s | scoring sentences/s | new tokens/s at batch 1 / 8 / 32 | decode share of bandwidth at batch 1 | peak GPU MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for path, b in benches:
            ref = read(path.with_name(path.name.replace("bench-", "reference-", 1)))
            lines += bench_rows(b, ref)
        lines.append("")
        if any(read(p.with_name(p.name.replace("bench-", "reference-", 1))) for p, _ in benches):
            lines.append(
                "Rows \"transformers\": `tools/gpu/transformers_reference.py` on the workload "
                "`bench device --workload-out` wrote (the same model folder, texts and prompts, "
                "dtype, batch sizes and repetitions), `attn_implementation=\"sdpa\"`, greedy "
                "`generate` with exactly as many new tokens; ×: nlebench ÷ transformers."
            )
            lines.append("")
        lines.append(
            "Decode share: weight bytes × decode steps/s ÷ measured bandwidth (each step reads every "
            "weight once; a lower bound on the bytes moved). A share far below 100 % means a decode "
            "step is bound by kernel launches and host work rather than by memory: candle launches "
            "each operation separately (no fused kernels, no CUDA graphs)."
        )
        lines.append("")
    e2e = text(results, "e2e.txt")
    if e2e:
        lines += [
            f"**End to end**: `nlebench run experiments/sweeps/quickstart.toml` (all four task kinds) "
            f"with `--device cuda:0` and with `--device cpu`: {e2e} metric values (with intervals) equal.",
            "",
        ]
    section = "\n".join(lines) + "\n"
    if "--print" in sys.argv:
        print(section)
    else:
        write_section(TITLE, section)
        print(f"wrote the '{TITLE}' section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
