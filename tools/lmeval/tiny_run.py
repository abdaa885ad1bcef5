#!/usr/bin/env python3
"""lm-evaluation-harness itself writes the files that `nlebench import --format lm-eval` reads.

Two tiny local tasks over the quickstart's data files, run by lm-eval's own evaluator
(`lm_eval.simple_evaluate`) and saved by its own `EvaluationTracker`, exactly as
`lm_eval --output_path OUT --log_samples` saves them:

- `nlebench_alpaca_culture` (`generate_until`): experiments/data/no-alpaca-plus-mini.csv in
  NO-Alpaca-Plus's template; its metric `sent_bleu` is sacrebleu's sentence BLEU per document,
  averaged, which is NLEBench's BLEU (../shared/reference/nlebench.md);
- `nlebench_boolq` (`multiple_choice`): experiments/data/no-boolq-mini.jsonl with the label
  words `nei`/`ja`, metric `acc`.

The model is a tiny deterministic stand-in written here against lm-eval's `LM` interface (its
`hf` model needs PyTorch, which CI does not install): it answers a generation with the prompt's
first words and scores a continuation by a hash of the context and the continuation. What is
checked is the interchange, not the model.

    python tools/lmeval/tiny_run.py --out DIR    # prints the results file's path
"""

import argparse
import hashlib
import pathlib
import sys
import tempfile

import lm_eval
from lm_eval.api.model import LM
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

ROOT = pathlib.Path(__file__).resolve().parents[2]

GENERATION = """\
task: nlebench_alpaca_culture
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {data}/no-alpaca-plus-mini.csv
test_split: test
output_type: generate_until
doc_to_text: "{{% if input %}}{{{{instruction}}}} {{{{input}}}} :{{% else %}}{{{{instruction}}}} :{{% endif %}}"
doc_to_target: "{{{{output}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 32
process_results: !function metrics.sentence_bleu
metric_list:
  - metric: sent_bleu
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""

CHOICE = """\
task: nlebench_boolq
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}/no-boolq-mini.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{passage}}}}\\nSpørsmål: {{{{question}}}}?\\nSvar:"
doc_to_choice: ["nei", "ja"]
doc_to_target: "{{{{1 if label else 0}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""

METRICS = """\
import sacrebleu


def sentence_bleu(doc, results):
    return {"sent_bleu": sacrebleu.BLEU().sentence_score(results[0], [doc["output"]]).score}
"""


class EchoLM(LM):
    """Answers with the prompt's first words; scores by a hash (deterministic)."""

    def generate_until(self, requests):
        return [" ".join(r.args[0].split()[:6]) for r in requests]

    def loglikelihood(self, requests):
        out = []
        for r in requests:
            context, continuation = r.args
            h = hashlib.sha256((context + "\x00" + continuation).encode()).digest()
            out.append((-1.0 - h[0] / 32.0, False))
        return out

    def loglikelihood_rolling(self, requests):
        return [-float(len(r.args[0])) for r in requests]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=pathlib.Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tasks:
        data = ROOT / "experiments" / "data"
        (pathlib.Path(tasks) / "generation.yaml").write_text(GENERATION.format(data=data))
        (pathlib.Path(tasks) / "choice.yaml").write_text(CHOICE.format(data=data))
        (pathlib.Path(tasks) / "metrics.py").write_text(METRICS)
        tracker = EvaluationTracker(output_path=str(args.out))
        results = lm_eval.simple_evaluate(
            model=EchoLM(),
            tasks=["nlebench_alpaca_culture", "nlebench_boolq"],
            task_manager=TaskManager(include_path=tasks),
            log_samples=True,
            evaluation_tracker=tracker,
        )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    print(tracker.date_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
