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

The model is a tiny word-bigram language model (add-one smoothing) fitted here to the files
in experiments/data, on lm-eval's `LM` interface: its log-likelihoods are its own and it
generates greedily until a stop string or the token limit. (lm-eval's `hf` model needs
PyTorch, which CI does not install.)

    python tools/lmeval/tiny_run.py --out DIR    # prints the results file's path

With `--include-path TASKS --tasks NAME,... [--num-fewshot K]` it runs those task files
instead (the same model), as `lm_eval --include_path TASKS --tasks NAME,... --num_fewshot K
--log_samples` would.
"""

import argparse
import math
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


class BigramLM(LM):
    """A tiny word-bigram language model (add-one smoothing) fitted to the quickstart's data
    files: log-likelihoods are its own, generation is greedy until a stop string or the token
    limit."""

    def __init__(self, corpus: str):
        super().__init__()
        words = corpus.split()
        self.vocab = sorted(set(words))
        self.pairs: dict[str, dict[str, int]] = {}
        for a, b in zip(words, words[1:]):
            self.pairs.setdefault(a, {})
            self.pairs[a][b] = self.pairs[a].get(b, 0) + 1

    def logprob(self, prev: str, word: str) -> float:
        after = self.pairs.get(prev, {})
        return math.log((after.get(word, 0) + 1) / (sum(after.values()) + len(self.vocab) + 1))

    def most_likely(self, prev: str) -> str:
        after = self.pairs.get(prev, {})
        return max(sorted(after), key=lambda w: after[w]) if after else self.vocab[0]

    def generate_until(self, requests):
        out = []
        for r in requests:
            context, kwargs = r.args
            until = kwargs.get("until", [])
            words = context.split()[-1:] or [self.vocab[0]]
            text = ""
            for _ in range(kwargs.get("max_gen_toks", 32)):
                words.append(self.most_likely(words[-1]))
                text = " ".join(words[1:])
                if any(u in text for u in until):
                    text = text[: min(text.index(u) for u in until if u in text)]
                    break
            out.append(text)
        return out

    def loglikelihood(self, requests):
        out = []
        for r in requests:
            context, continuation = r.args
            prev = (context.split() or [""])[-1]
            total, greedy = 0.0, True
            for w in continuation.split():
                total += self.logprob(prev, w)
                greedy = greedy and self.most_likely(prev) == w
                prev = w
            out.append((total, greedy))
        return out

    def loglikelihood_rolling(self, requests):
        out = []
        for r in requests:
            words = r.args[0].split()
            out.append(sum(self.logprob(a, b) for a, b in zip(words, words[1:])))
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--include-path", type=pathlib.Path)
    ap.add_argument("--tasks")
    ap.add_argument("--num-fewshot", type=int)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tasks:
        data = ROOT / "experiments" / "data"
        if args.include_path is None:
            (pathlib.Path(tasks) / "generation.yaml").write_text(GENERATION.format(data=data))
            (pathlib.Path(tasks) / "choice.yaml").write_text(CHOICE.format(data=data))
            (pathlib.Path(tasks) / "metrics.py").write_text(METRICS)
            names = ["nlebench_alpaca_culture", "nlebench_boolq"]
        else:
            tasks, names = str(args.include_path), args.tasks.split(",")
        tracker = EvaluationTracker(output_path=str(args.out))
        results = lm_eval.simple_evaluate(
            model=BigramLM("\n".join(p.read_text(encoding="utf-8") for p in sorted(data.iterdir()) if p.is_file())),
            tasks=names,
            num_fewshot=args.num_fewshot,
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
