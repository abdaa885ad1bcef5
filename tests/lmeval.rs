//! lm-evaluation-harness interchange, against lm-eval itself (`NLEBENCH_TEST_LMEVAL`: a Python
//! with `lm-eval` installed; `.ci/run` installs it from PyPI):
//! - files lm-eval writes (`tools/lmeval/tiny_run.py`: its evaluator and tracker on two tiny
//!   local tasks) import with `import --format lm-eval` and rescore to lm-eval's own numbers;
//! - files `export --to lm-eval` writes read in lm-eval's code (`tools/lmeval/read_back.py`:
//!   its `make_table` and `hash_string`) and import back to the same metrics.
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
