//! lm-evaluation-harness interchange, against lm-eval itself (`NLEBENCH_TEST_LMEVAL`: a Python
//! with `lm-eval` installed; `.ci/run` installs it from PyPI):
//! - files lm-eval writes (`tools/lmeval/tiny_run.py`: its evaluator and tracker on two tiny
//!   local tasks) import with `import --format lm-eval` and rescore to lm-eval's own numbers;
//! - files `export --to lm-eval` writes read in lm-eval's code (`tools/lmeval/read_back.py`:
//!   its `make_table` and `hash_string`) and import back to the same metrics;
//! - lm-eval's samples of task files (one per output type, one-shot) import as runs of those
//!   tasks (`--task lm-eval:TASK`), every request checked, with lm-eval's metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, root};
use serde_json::Value;

/// Run `tools/lmeval/SCRIPT ARGS` with the lm-eval Python, offline; its standard output.
fn python(script: &str, args: &[&Path], home: &Path) -> String {
    let py = std::env::var("NLEBENCH_TEST_LMEVAL").expect("NLEBENCH_TEST_LMEVAL");
    let out = Command::new(py)
        .arg(root().join("tools/lmeval").join(script))
        .args(args)
        .env("HF_HOME", home.join("hf"))
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The one file under `dir` whose name starts with `prefix`.
fn find(dir: &Path, prefix: &str) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap().to_string_lossy().starts_with(prefix) {
                found.push(p);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "{prefix}* under {}: {found:?}",
        dir.display()
    );
    found.remove(0)
}

/// Metric `name` of task `task` in `export SWEEP --format json`.
fn metric(env: &Env, sweep: &str, task: &str, name: &str) -> f64 {
    let rows: Vec<Value> =
        serde_json::from_str(&env.ok(&["export", sweep, "--format", "json"])).unwrap();
    let hits: Vec<f64> = rows
        .iter()
        .filter(|r| r["task"] == task && r["metric"] == name)
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{task} {name} in {rows:?}");
    hits[0]
}

/// The arguments of `import --format lm-eval --task TASK --model MODEL --file FILE`.
fn import_args<'a>(task: &'a str, model: &'a str, file: &'a Path) -> [&'a str; 9] {
    [
        "import",
        "--format",
        "lm-eval",
        "--task",
        task,
        "--model",
        model,
        "--file",
        file.to_str().unwrap(),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn files_written_by_lm_eval_import_and_rescore_to_lm_evals_numbers() {
    let env = Env::embedded();
    let out = env.dir.path().join("lm-eval-out");
    python("tiny_run.py", &[Path::new("--out"), &out], env.dir.path());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(find(&out, "results_")).unwrap()).unwrap();
    let theirs = |task: &str, m: &str| {
        results["results"][task][format!("{m},none")]
            .as_f64()
            .unwrap()
    };

    // Generation: outputs and references as lm-eval logged them, BLEU as NLEBench defines it
    // (sacrebleu sentence BLEU, averaged), which the lm-eval task computed per document too.
    let gen_file = find(&out, "samples_nlebench_alpaca_culture_");
    let said = env.ok(&import_args("no-alpaca-culture", "bigram-lm", &gen_file));
    assert!(said.contains("imported 6 sample(s)"), "{said}");
    let bleu = metric(&env, "imports", "no-alpaca-culture", "bleu");
    let sent_bleu = theirs("nlebench_alpaca_culture", "sent_bleu");
    assert!(
        sent_bleu > 0.0 && close(bleu, sent_bleu),
        "nlebench {bleu} vs lm-eval {sent_bleu}"
    );
    let samples: Vec<Value> =
        serde_json::from_str(&env.ok(&["export", "imports", "--samples", "--format", "json"]))
            .unwrap();
    let logged: Vec<Value> = std::fs::read_to_string(&gen_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for line in &logged {
        let s = samples
            .iter()
            .find(|s| s["idx"] == line["doc_id"])
            .unwrap_or_else(|| panic!("doc {} not imported", line["doc_id"]));
        assert_eq!(s["output"], line["filtered_resps"][0]);
        assert_eq!(s["reference"], line["target"]);
        assert_eq!(s["prompt"], line["arguments"]["gen_args_0"]["arg_0"]);
    }

    // Multiple choice: the most likely choice (a label word) against the gold one; lm-eval's
    // `acc` is the same comparison.
    let choice_file = find(&out, "samples_nlebench_boolq_");
    let said = env.ok(&import_args("no-boolq", "bigram-lm", &choice_file));
    assert!(said.contains("imported 8 sample(s)"), "{said}");
    let accuracy = metric(&env, "imports", "no-boolq", "accuracy");
    let acc = theirs("nlebench_boolq", "acc");
    assert!(
        close(accuracy, acc) || close(accuracy, 100.0 * acc),
        "nlebench {accuracy} vs lm-eval {acc}"
    );

    // A loglikelihood-free table given as lm-eval is refused with the line and the fix.
    let csv = root().join("experiments/data/no-alpaca-plus-mini.csv");
    let e = env.run(&import_args("no-alpaca-culture", "x", &csv));
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && stderr.contains(":1: invalid JSON"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn an_export_to_lm_eval_reads_in_lm_eval_and_imports_back_to_the_same_metrics() {
    let env = Env::embedded();
    env.ok(&[
        "run",
        root()
            .join("experiments/sweeps/quickstart.toml")
            .to_str()
            .unwrap(),
    ]);
    let dir = env.dir.path().join("exported");
    let export = [
        "export",
        "quickstart",
        "--to",
        "lm-eval",
        dir.to_str().unwrap(),
    ];
    let said = env.ok(&export);
    assert!(
        said.contains("4 run(s) in 1 results file(s) and 4 samples file(s)"),
        "{said}"
    );
    // Exporting again rewrites the same files.
    env.ok(&export);

    let read: Value =
        serde_json::from_str(&python("read_back.py", &[&dir], env.dir.path())).unwrap();
    assert_eq!(read["tables"], 1, "{read}");
    // One line per example of each run (the quickstart's data files).
    for (task, n) in [
        ("no-crows-pairs", 32),
        ("no-boolq", 8),
        ("no-alpaca-culture", 6),
        ("cot-scene-1", 3),
    ] {
        assert_eq!(read["samples"][task], n, "{task}: {read}");
    }
    let bleu = metric(&env, "quickstart", "no-alpaca-culture", "bleu");
    assert!(
        close(
            read["results"]["no-alpaca-culture"]["bleu"]
                .as_f64()
                .unwrap(),
            bleu
        ),
        "{read}"
    );

    // Round trip: the generation run's samples file imports to the run's own BLEU and ROUGE-L.
    let file = find(&dir, "samples_no-alpaca-culture_");
    env.ok(&import_args(
        "no-alpaca-culture",
        "norgpt-tiny-random",
        &file,
    ));
    for m in ["bleu", "rouge_l"] {
        let (run, back) = (
            metric(&env, "quickstart", "no-alpaca-culture", m),
            metric(&env, "imports", "no-alpaca-culture", m),
        );
        assert!(close(run, back), "{m}: run {run}, imported back {back}");
    }
}

/// Task files for [`lm_evals_samples_of_task_files_import_as_runs_of_them`]: a multiple-choice
/// task with a training split for its examples, a generation task with a regex filter, and a
/// rolling log-likelihood task that sets no few-shot examples (a file's 0 stands).
fn task_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let rows = |range: std::ops::Range<usize>| -> String {
        range
            .map(|i| {
                let (a, b) = (i % 7 + 1, i / 7 + 2);
                serde_json::json!({
                    "question": format!("Hva er {a} pluss {b}?"),
                    "options": [(a + b).to_string(), (a + b + 2).to_string(), format!("{a} og {b}")],
                    "label": i % 3,
                    "answer": format!("Svaret er {}", a + b),
                    "text": format!("Det var en gang {a} katter og {b} hunder som bodde ved fjorden."),
                })
                .to_string()
                    + "\n"
            })
            .collect()
    };
    std::fs::write(dir.join("train.jsonl"), rows(100..110)).unwrap();
    std::fs::write(dir.join("test.jsonl"), rows(0..24)).unwrap();
    let data = format!(
        "dataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {0}/train.jsonl\n    test: {0}/test.jsonl\ntraining_split: train\ntest_split: test\n",
        dir.display()
    );
    std::fs::write(
        dir.join("nor_mc.yaml"),
        format!("task: nor_mc\n{data}output_type: multiple_choice\ndoc_to_text: \"Spørsmål: {{{{question}}}}\\nSvar:\"\ndoc_to_choice: options\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("nor_gen.yaml"),
        format!("task: nor_gen\n{data}output_type: generate_until\ndoc_to_text: \"{{{{question}}}}\\n\"\ndoc_to_target: \"{{{{answer}}}}\"\ngeneration_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 6\nfilter_list:\n  - name: first-word\n    filter:\n      - function: regex\n        regex_pattern: \"(\\\\w+)\"\n      - function: take_first\nmetric_list:\n  - metric: exact_match\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("nor_roll.yaml"),
        format!("task: nor_roll\n{data}output_type: loglikelihood_rolling\nnum_fewshot: 0\ndoc_to_text: text\ndoc_to_target: text\n"),
    )
    .unwrap();
}

#[test]
#[cfg_attr(
    not(nlebench_lmeval),
    ignore = "needs lm-evaluation-harness: set NLEBENCH_TEST_LMEVAL to a Python with `lm-eval` installed (.ci/run does)"
)]
fn lm_evals_samples_of_task_files_import_as_runs_of_them() {
    let env = Env::embedded();
    let tasks = env.dir.path().join("tasks");
    task_files(&tasks);
    let out = env.dir.path().join("lm-eval-out");
    python(
        "tiny_run.py",
        &[
            Path::new("--out"),
            &out,
            Path::new("--include-path"),
            &tasks,
            Path::new("--tasks"),
            Path::new("nor_mc,nor_gen,nor_roll"),
            Path::new("--num-fewshot"),
            Path::new("1"),
        ],
        env.dir.path(),
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(find(&out, "results_")).unwrap()).unwrap();
    for task in ["nor_mc", "nor_gen", "nor_roll"] {
        let file = find(&out, &format!("samples_{task}_"));
        // Each request lm-eval made is the one nlebench builds (the import checks them all).
        let printed = env.ok(&[
            "import",
            "--format",
            "lm-eval",
            "--task",
            &format!("lm-eval:{task}"),
            "--include-path",
            tasks.to_str().unwrap(),
            "--num-fewshot",
            "1",
            "--model",
            "bigram",
            "--file",
            file.to_str().unwrap(),
        ]);
        assert!(printed.contains("imported 24 sample(s)"), "{printed}");
        let run = env.query(&format!(
            "SELECT CAST(r.id AS TEXT) FROM runs r JOIN sweep_cells c ON c.run_id = r.id WHERE c.cell_key LIKE 'bigram/lm-eval:{task}/%'"
        ))[0][0]
            .clone();
        let stored = env.query(&format!(
            "SELECT name, CAST(value AS TEXT) FROM metrics WHERE run_id = {run}"
        ));
        let want = results["results"][task].as_object().unwrap();
        let mut compared = 0;
        for (key, value) in want {
            // `METRIC,FILTER` keys only (not the alias, `sample_len` or the standard errors).
            let (Some(value), true) = (value.as_f64(), key.contains(',')) else {
                continue;
            };
            if key.contains("_stderr") {
                continue;
            }
            let name = key.strip_suffix(",none").unwrap_or(key);
            let got = stored
                .iter()
                .find(|r| r[0] == name)
                .unwrap_or_else(|| panic!("{task}: no {name} in {stored:?}"));
            let got: f64 = got[1].parse().unwrap();
            assert!(
                close(got, value),
                "{task} {key}: lm-eval {value}, nlebench {got}"
            );
            compared += 1;
        }
        let expected = match task {
            "nor_mc" => 2,
            "nor_gen" => 1,
            _ => 3,
        };
        assert_eq!(compared, expected, "{task}: {want:?} {stored:?}");
    }
}
