#!/usr/bin/env python3
"""lm-evaluation-harness's own requests for every NorEval task, on small local datasets.

NorEval's task files (lm-eval 0.4.13, `lm_eval/tasks/noreval`) name Hub datasets. This script
writes, for each dataset, a few documents in its schema (Norwegian text, with the quotes,
non-breaking spaces, stray whitespace and empty facts the hooks and templates must handle) as
JSON Lines, and for each task a wrapper file that includes the task's own file and points it at
those files:

    include: <lm_eval>/tasks/noreval/norquad/norquad_p0.yaml
    task: norquad_p0
    dataset_path: json
    dataset_name: null
    dataset_kwargs: {data_files: {train: …, validation: …, test: …}}

It then builds every task with lm-eval's TaskManager (the wrappers as `include_path`), seeds the
few-shot sampler as `simple_evaluate` does, applies `--num-fewshot` as `simple_evaluate` does
(ignored where the task file sets 0), calls `build_all_requests` and writes each request as
`{"doc_id", "idx", "request_type", "arguments"}`, a list per task in lm-eval's order:

    python tools/lmeval/noreval_requests.py --out DIR [--num-fewshot K ...] [--seed S] [--limit N]
    python tools/lmeval/noreval_requests.py --include-path TASKS --out DIR [...]

The second form builds every task under TASKS instead (task files written for a test).
`--out DIR --tasks-only` writes the wrappers and their datasets and stops.

    python tools/lmeval/noreval_requests.py --index FILE

writes lm-eval's own index of its installed task folder instead, {name: kind}, kind one of
task, group, tag (a Python task class counts as a task), and the folder as "_tasks_dir".

DIR/tasks holds the wrappers, DIR/data the datasets, DIR/requests-K.json the requests for each
K ("default" when no --num-fewshot: each task file's own setting). Tasks lm-eval cannot build
are written as {"error": "..."}.

DIR/scores-K.json holds, per task, a made-up model's responses to those requests (seeded by
task, document and request: log-likelihoods with greedy flags, generations that are the
target, a variant of it or something else) and the metrics lm-eval's evaluator computes from
them: filters, `process_results`, each metric's aggregation, keyed "METRIC,FILTER".

Two NorEval modules import packages CI's lm-eval environment lacks (`transformers` for
norquad's SQuAD metric, `bert_score` for norsumm's); both are used only when scoring, so where
they are missing a stand-in module takes their place while the requests are built. Every name
looked up in a stand-in is a class nothing is an instance of: `datasets` checks objects it
hashes against `transformers.PreTrainedTokenizerBase` once a `transformers` module is loaded.
"""

import argparse
import importlib.util
import json
import pathlib
import sys
import types
import zlib
from collections import defaultdict


class StandIn(types.ModuleType):
    """A module whose every attribute is a new class with no instances."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = type(attr, (), {})
        setattr(self, attr, value)
        return value


def stand_in(name):
    """A stand-in module for `name` (and its parents) when it cannot be imported."""
    try:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            __import__(name)
            return
    except ImportError:
        pass
    parts = name.split(".")
    parent = None
    for i in range(1, len(parts) + 1):
        module = sys.modules.setdefault(".".join(parts[:i]), StandIn(".".join(parts[:i])))
        if parent is not None:
            setattr(parent, parts[i - 1], module)
        parent = module


stand_in("transformers.data.metrics.squad_metrics")
stand_in("bert_score")

import lm_eval  # noqa: E402
from lm_eval.tasks import TaskManager, get_task_dict  # noqa: E402
from lm_eval.tasks._yaml_loader import load_yaml  # noqa: E402

NOREVAL = pathlib.Path(lm_eval.__file__).parent / "tasks" / "noreval"

NB = "Bokmål"
Q = [
    "Hva heter hovedstaden i Norge?",
    "Hvilket dyr er kjent for å «bygge demninger»?",
    "Hvor mange fylker hadde Norge i 2019?",
    "Hva kalles den lengste fjorden i Norge?",
    "Hvem skrev «Et dukkehjem»?",
    "Hva er 'lutefisk' laget av?",
    "Hvilken farge har det norske flagget\u00a0i midten?",
]
OPTIONS = [
    ["Oslo", "Bergen", "Trondheim", "Stavanger", "Tromsø"],
    ["Elg", "Bever", "Rev", "Gaupe", "Jerv"],
    ["18", "19", "11", "15", "20"],
    ["Sognefjorden", "Hardangerfjorden", "Oslofjorden", "Geirangerfjorden", "Lysefjorden"],
    ["Henrik Ibsen", "Knut Hamsun", "Sigrid Undset", "Bjørnstjerne Bjørnson", "Jon Fosse"],
    ["Tørrfisk", "Laks", "Sild", "Makrell", "Reker"],
    ["Blå", "Rød", "Hvit", "Grønn", "Gul"],
]
ANSWER = [0, 1, 0, 0, 0, 0, 0]
LABELS = ["A", "B", "C", "D", "E"]
TEXTS = [
    "Filmen var rett og slett fantastisk, med sterke skuespillerprestasjoner.",
    "Jeg kjedet meg gjennom hele forestillingen.  Altfor lang.",
    'Maten var god, men servicen var "under enhver kritikk".',
    "En varm og morsom roman om oppvekst på Vestlandet.\nAnbefales!",
    "Albumet skuffer: ingen av låtene blir sittende.",
    "Hotellet lå sentralt og rommene var rene og romslige.",
]


def mc(i, n=5):
    return {
        "id": f"q{i}",
        "question": Q[i % len(Q)],
        "choices": {"label": LABELS[:n], "text": OPTIONS[i % len(OPTIONS)][:n]},
        "answer": LABELS[ANSWER[i % len(Q)] % n],
    }


def norcommonsenseqa(split, n):
    return [mc(i + (3 if split == "train" else 0)) for i in range(n)]


def nrk_quiz_qa(split, n):
    # Two-choice questions exercise p2's "A eller B".
    return [mc(i, 2 if i % 3 == 1 else 4) for i in range(n)]


def noropenbookqa(split, n):
    docs = []
    for i in range(n):
        d = mc(i + (2 if split == "train" else 0), 4)
        d["question_stem"] = d.pop("question")
        d["fact"] = "" if i == 1 else f"Fakta nr. {i}: {TEXTS[i % len(TEXTS)]}"
        docs.append(d)
    return docs


def belebele(split, n):
    docs = []
    for i in range(n):
        o = OPTIONS[i % len(OPTIONS)]
        docs.append({
            "link": f"https://example.org/{i}",
            "question_number": i,
            "flores_passage": TEXTS[i % len(TEXTS)] + " " + TEXTS[(i + 1) % len(TEXTS)],
            "question": Q[i % len(Q)],
            "mc_answer1": o[0], "mc_answer2": o[1], "mc_answer3": o[2], "mc_answer4": o[3],
            "correct_answer_num": str(ANSWER[i % len(Q)] + 1),
        })
    return docs


def norec(split, n):
    off = 2 if split == "train" else 0
    return [{"id": f"r{i}", "review": TEXTS[(i + off) % len(TEXTS)], "sentiment": (i + off) % 2}
            for i in range(n)]


def norquad(split, n):
    off = {"train": 3, "validation": 1}.get(split, 0)
    docs = []
    for i in range(n):
        t = TEXTS[(i + off) % len(TEXTS)]
        docs.append({
            "id": f"nq{i}",
            "context": f"  Artikkel {i + off}\n  {t}\n\nMer tekst her. \n",
            "question": "  Hva  sier\tteksten om " + ["filmen", "maten", "boka"][i % 3] + "? ",
            "answers": {"text": [t.split()[0], t.split()[1]], "answer_start": [0, 3]},
        })
    return docs


def idioms(split, n):
    starts = ["Det er ikke gull", "Ingen roser", "Borte bra, men", "Den som venter",
              "Mange bekker små", "Bedre føre var"]
    ends = ["alt som glimrer", "uten torner", "hjemme best", "på noe godt", "gjør en stor å",
            "enn etter snar"]
    return [{"idiom_start": starts[i % 6], "completion": ends[i % 6],
             "accepted_completions": [ends[i % 6], ends[i % 6] + "."],
             "language": "nob" if i % 2 == 0 else "nno"} for i in range(n)]


def norsumm(split, n):
    return [{"id": f"s{i}", "article": " ".join(TEXTS[i % 6:] + TEXTS[:i % 6]),
             "summaries": [TEXTS[i % 6], TEXTS[(i + 1) % 6]]} for i in range(n)]


def ask_gec(split, n):
    off = {"train": 2, "validation": 1}.get(split, 0)
    wrong = ["Jeg har bodd i Norge i to år og jeg liker det godt .",
             "Hun gikk til butikken igår for å kjøpe melk",
             "Det er mange ting som jeg vil å gjøre.",
             "Vi snakket om det i lang tid , men vi ikke fant svaret."]
    return [{"id": i, "source": wrong[(i + off) % 4], "correction": wrong[(i + off) % 4].replace(" .", ".")}
            for i in range(n)]


def tatoeba(split, n):
    en = ["I like coffee.", "Where is the station?", "It's raining today.", "Tom is tired.",
          "We'll see.", "Can you help me?"]
    no = ["Jeg liker kaffe.", "Hvor er stasjonen?", "Det regner i dag.", "Tom er trøtt.",
          "Vi får se.", "Kan du hjelpe meg?"]
    off = 2 if split == "validation" else 0
    return [{"sourceLang": "eng", "targetlang": "nob", "sourceString": en[(i + off) % 6],
             "targetString": no[(i + off) % 6]} for i in range(n)]


def truthful_gen(split, n):
    return [{"question": "  " + Q[i % len(Q)] + " ", "best_answer": OPTIONS[i][0],
             "correct_answers": [OPTIONS[i][0], " " + OPTIONS[i][0] + " er riktig. ", ""],
             "incorrect_answers": [OPTIONS[i][1], OPTIONS[i][2] + "."],
             "category": "Misc"} for i in range(n)]


def truthful_mc(split, n):
    return [{"question": Q[i % len(Q)],
             "mc1_targets": {"choices": OPTIONS[i][:4], "labels": [1, 0, 0, 0]}} for i in range(n)]


def ncb(split, n):
    pairs = [("Han har ikke vært der.", "Han har vært ikke der."),
             ("Jeg vet ikke hva han heter.", "Jeg vet ikke hva heter han."),
             ("Hun sa at hun ikke kunne komme.", "Hun sa at hun kunne ikke komme."),
             ("Vi har bodd her lenge.", "Vi har bodd her lenge siden."),
             ("Boka som ligger på bordet, er min.", "Boka som ligger på bordet er, min.")]
    return [{"correct": c, "wrong": w} for c, w in pairs[:n]]


def instruct(split, n):
    return [{"prompt": ["Skriv om teksten til et enklere språk:", "Oppsummer:"][i % 2],
             "context": TEXTS[i % 6], "response": TEXTS[(i + 1) % 6]} for i in range(n)]


DATASETS = {
    "ltg/norcommonsenseqa": norcommonsenseqa,
    "ltg/nrk_quiz_qa": nrk_quiz_qa,
    "ltg/noropenbookqa": noropenbookqa,
    "facebook/belebele": belebele,
    "ltg/norec_document": norec,
    "ltg/norec_sentence": norec,
    "ltg/norquad": norquad,
    "Sprakbanken/Norwegian_idioms": idioms,
    "SamiaT/NorSumm": norsumm,
    "ltg/ask-gec": ask_gec,
    "Helsinki-NLP/tatoeba_mt": tatoeba,
    "ltg/nortruthfulqa_gen": truthful_gen,
    "ltg/nortruthfulqa_mc": truthful_mc,
    "hcfa/ncb": ncb,
    "ltg/norrewrite-instruct": instruct,
    "ltg/norsummarize-instruct": instruct,
}
DOCS = 6


def write_tasks(out):
    """One wrapper per NorEval task file; the data files each points at."""
    tasks = {}
    for path in sorted(NOREVAL.rglob("*.yaml")):
        cfg = load_yaml(path, resolve_func=False)
        if "task" not in cfg:
            continue
        name, dataset = cfg["task"], cfg.get("dataset_path")
        make = DATASETS[dataset]
        splits = {cfg.get(k) for k in ("training_split", "validation_split", "test_split", "fewshot_split")}
        splits.discard(None)
        files = {}
        for split in sorted(splits):
            f = out / "data" / dataset.replace("/", "__") / f"{split}.jsonl"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in make(split, DOCS)), encoding="utf-8")
            files[split] = str(f)
        wrapper = {
            "include": str(path),
            "task": name,
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": files},
        }
        (out / "tasks").mkdir(parents=True, exist_ok=True)
        (out / "tasks" / f"{name}.yaml").write_text(json.dumps(wrapper, ensure_ascii=False, indent=1), encoding="utf-8")
        tasks[name] = str(path)
    return tasks


def leaves(tree):
    """The tasks of `get_task_dict`'s result, groups flattened, by task name."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value)
        else:
            yield value.config.task, value


def build(task, num_fewshot, seed, limit):
    """`simple_evaluate`'s few-shot settings, then `build_all_requests`."""
    if num_fewshot is not None:
        if task.get_config("num_fewshot") != 0:
            task.set_config(key="num_fewshot", value=num_fewshot)
    elif task.get_config("num_fewshot") is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=seed)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return [
        {"doc_id": i.doc_id, "idx": i.idx, "request_type": i.request_type,
         "arguments": list(i.arguments)}
        for i in task.instances
    ]


def crc(*parts):
    return zlib.crc32("|".join(map(str, parts)).encode("utf-8"))


def response(task_name, inst):
    """A made-up model's deterministic answer to one request (seeded by the task, document and
    request): log-likelihoods in (-10, 0] with ties and greedy flags, generations that are the
    target, a variant of it, or something else."""
    h = crc(task_name, inst.doc_id, inst.idx)
    if inst.request_type == "loglikelihood":
        return [-(h % 1000) / 100.0 if h % 7 else -1.5, h % 3 == 0]
    if inst.request_type == "loglikelihood_rolling":
        return -(h % 100000) / 100.0
    target = inst.doc.get("_target")
    return [target, f" {target}", target.upper() + ".", "Vet ikke", f"{target} og mer"][h % 5]


def score(task_name, task):
    """lm-eval's evaluator on the made-up responses: filters, process_results, aggregation."""
    resps = []
    for inst in task.instances:
        r = response(task_name, inst) if inst.request_type != "generate_until" else None
        if r is None:
            gold = task.doc_to_target(inst.doc)
            if task.config.doc_to_choice is not None and isinstance(gold, int):
                gold = task.doc_to_choice(inst.doc)[gold]
            gold = gold[0] if isinstance(gold, list) and gold else gold
            inst.doc["_target"] = str(gold)
            r = response(task_name, inst)
            del inst.doc["_target"]
        inst.resps = [tuple(r) if isinstance(r, list) else r]
        resps.append(r)
    task.apply_filters()
    by_doc = defaultdict(list)
    for inst in task.instances:
        by_doc[inst.doc_id].append(inst)
    raw = defaultdict(list)
    for key in task.instances[0].filtered_resps:
        for doc_id, doc in task.doc_iterator(limit=None if not by_doc else max(by_doc) + 1):
            reqs = sorted(by_doc[doc_id], key=lambda i: i.idx)
            for metric, value in task.process_results(doc, [r.filtered_resps[key] for r in reqs]).items():
                raw[(metric, key)].append(value)
    aggs = task.aggregation()
    values = {f"{m},{k}": float(aggs.get(m, lambda x: sum(x) / len(x))(items)) for (m, k), items in raw.items()}
    return resps, values


def requests(names, groups, manager, num_fewshot, seed, limit, scores=None):
    """Each task's requests; each group's as {task: requests}. With `scores` (a dict), each
    task's made-up responses and lm-eval's metrics of them go there too."""
    out = {}
    for name in names:
        try:
            tree = get_task_dict([name], manager)
            if name in groups:
                out[name] = {t: build(task, num_fewshot, seed, limit) for t, task in leaves(tree)}
                continue
            out[name] = build(tree[name], num_fewshot, seed, limit)
            if scores is not None:
                try:
                    scores[name] = dict(zip(("responses", "metrics"), score(name, tree[name])))
                except Exception as e:  # noqa: BLE001 - reported by task
                    scores[name] = {"error": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - every failure is reported by task
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path)
    ap.add_argument("--index", type=pathlib.Path)
    ap.add_argument("--num-fewshot", type=int, action="append", default=None)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--include-path", type=pathlib.Path, default=None)
    ap.add_argument("--tasks-only", action="store_true", help="write DIR/tasks and DIR/data only")
    a = ap.parse_args()
    if a.index is not None:
        index = TaskManager()._index
        kinds = {k: e.kind.name.lower().replace("py_task", "task") for k, e in index.items()}
        kinds["_tasks_dir"] = str(NOREVAL.parent)
        a.index.write_text(json.dumps(kinds, indent=1), encoding="utf-8")
        return
    if a.out is None:
        ap.error("--out is required")
    a.out.mkdir(parents=True, exist_ok=True)
    if a.include_path is None:
        tasks, groups = write_tasks(a.out), []
        include = a.out / "tasks"
        if a.tasks_only:
            return
    else:
        include = a.include_path
        cfgs = [load_yaml(p, resolve_func=False) for p in sorted(include.rglob("*.yaml"))]
        tasks = [c["task"] for c in cfgs if isinstance(c.get("task"), str) and "group" not in c]
        groups = [c["group"] for c in cfgs if "group" in c]
    manager = TaskManager(include_path=str(include))
    for k in a.num_fewshot or [None]:
        scores = {}
        reqs = requests(sorted(tasks) + groups, set(groups), manager, k, a.seed, a.limit, scores)
        label = "default" if k is None else str(k)
        (a.out / f"scores-{label}.json").write_text(json.dumps(scores, ensure_ascii=False, indent=1), encoding="utf-8")
        (a.out / f"requests-{label}.json").write_text(json.dumps(reqs, ensure_ascii=False, indent=1), encoding="utf-8")
        bad = [n for n, r in reqs.items() if isinstance(r, dict) and "error" in r]
        print(f"num_fewshot={label}: {len(reqs) - len(bad)} of {len(reqs)} tasks built" + (f"; failed: {bad}" if bad else ""))


if __name__ == "__main__":
    main()
