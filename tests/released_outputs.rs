//! `nlebench score` reproduces the bias shares of the NorGLM authors' six released per-pair
//! perplexity files (read from ../shared, never copied into the project), against the values
//! recorded with pandas by tools/reference/bias_shares.py.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use std::path::PathBuf;

use common::{Env, root};

fn released_dir() -> PathBuf {
    test_support::released("bias")
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn score_reproduces_the_authors_bias_shares_for_all_six_released_files() {
    let dir = released_dir();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/bias_shares_reference.json")).unwrap(),
    )
    .unwrap();
    // Overall shares in the paper's direction, as published (NorGLM reference notes).
    let published = [
        ("bias_369M.csv", 47.11),
        ("bias_3B.csv", 45.97),
        ("bias_3B_continue.csv", 44.84),
        ("bias_23B.csv", 44.72),
        ("bias_llama_3B.csv", 48.66),
        ("bias_6B_nb-gptj.csv", 46.57),
    ];
    let env = Env::embedded();
    for (file, overall) in published {
        let path = dir.join(file);
        let out = env.ok(&[
            "score",
            "--task",
            "no-crows-pairs",
            "--input",
            path.to_str().unwrap(),
            "--json",
        ]);
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ours = got["metrics"].as_object().unwrap();
        let want = reference["files"][file]["metrics"].as_object().unwrap();
        assert_eq!(got["rows"], 1677, "{file}");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{file}: same metric names (overall and every bias type)"
        );
        for (name, w) in want {
            let (o, w) = (ours[name].as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (o - w).abs() < 1e-9,
                "{file} {name}: ours {o} vs pandas {w}"
            );
        }
        let paper = ours["bias_paper"].as_f64().unwrap();
        assert_eq!((paper * 100.0).round() / 100.0, overall, "{file}");
    }
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn score_rejects_a_file_without_the_perplexity_columns() {
    let dir = released_dir();
    let env = Env::embedded();
    let path = dir.join("crows_pairs_norwegian.csv");
    let out = env.run(&[
        "score",
        "--task",
        "no-crows-pairs",
        "--input",
        path.to_str().unwrap(),
    ]);
    let (_, stderr) = common::text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no column `perp_more`"), "{stderr}");
    assert!(
        stderr.contains("fix: a bias outputs file needs columns perp_more"),
        "{stderr}"
    );
}

fn cot_dir() -> PathBuf {
    released_dir().join("../cot/scene1")
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn score_with_the_paper_filter_reproduces_the_authors_cot_means() {
    let dir = cot_dir();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/text_metrics_reference.json"))
            .unwrap(),
    )
    .unwrap();
    let env = Env::embedded();
    for (key, want) in reference["paper_means"].as_object().unwrap() {
        let file = dir.join(key.trim_start_matches("cot/scene1/"));
        let out = env.ok(&[
            "score",
            "--task",
            "multi-qa-sum-summary",
            "--input",
            file.to_str().unwrap(),
            "--map",
            "hyp=generated_text,ref=positive_sample",
            "--filter",
            "paper",
            "--json",
        ]);
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["rows_kept"], want["rows_kept"], "{key}");
        for m in ["bleu", "rouge_1", "rouge_2", "rouge_l"] {
            let (a, b) = (
                got["metrics"][m].as_f64().unwrap(),
                want[m].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-9, "{key} {m}: {a} vs {b}");
        }
    }
    // The figures for NorGPT-23B, to four decimals.
    let out = env.ok(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        dir.join("CoT_23B_s1_contain.csv").to_str().unwrap(),
        "--map",
        "hyp=generated_text,ref=positive_sample",
        "--filter",
        "paper",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let four = |m: &str| (got["metrics"][m].as_f64().unwrap() * 1e4).round() / 1e4;
    assert_eq!(
        (
            four("bleu"),
            four("rouge_1"),
            four("rouge_2"),
            four("rouge_l")
        ),
        (1.3006, 0.1836, 0.0091, 0.1712)
    );
    assert_eq!(got["rows_kept"], 71);
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn bad_score_requests_fail_clearly() {
    let dir = cot_dir();
    let env = Env::embedded();
    let file = dir.join("CoT_3B_s1_contain.csv");
    let run = |args: &[&str]| {
        let mut all = vec![
            "score",
            "--task",
            "multi-qa-sum-summary",
            "--input",
            file.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert!(!out.status.success(), "{args:?} should fail");
        common::text(&out).1
    };
    let e = run(&["--map", "hyp=generated,ref=positive_sample"]);
    assert!(
        e.contains("no column `generated`") && e.contains("generated_text_s1"),
        "{e}"
    );
    let e = run(&[]);
    assert!(e.contains("give `--map hyp=COLUMN,ref=COLUMN`"), "{e}");
    let e = run(&["--map", "hypothesis=generated_text"]);
    assert!(e.contains("unknown role `hypothesis`"), "{e}");
    // A file of another task: the bias outputs have no generated text.
    let bias = released_dir().join("bias_369M.csv");
    let out = env.run(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        bias.to_str().unwrap(),
        "--map",
        "hyp=generated_text,ref=positive_sample",
    ]);
    assert!(common::text(&out).1.contains("no column `generated_text`"));
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn toxicity_aggregates_equal_pandas_and_the_malformed_file_is_rejected() {
    let dir = released_dir();
    let dir = dir.join("../toxicity");
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/toxicity_reference.json")).unwrap(),
    )
    .unwrap();
    let env = Env::embedded();
    for (file, want) in reference["files"].as_object().unwrap() {
        let out = env.ok(&[
            "score",
            "--task",
            "no-crows-pairs-toxicity",
            "--input",
            dir.join(file).to_str().unwrap(),
            "--json",
        ]);
        let got: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["rows"], want["rows"], "{file}");
        let want = want["metrics"].as_object().unwrap();
        assert_eq!(
            got["metrics"].as_object().unwrap().len(),
            want.len(),
            "{file}"
        );
        for (name, w) in want {
            let (a, b) = (got["metrics"][name].as_f64().unwrap(), w.as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{file} {name}: {a} vs pandas {b}");
        }
    }
    // toxicity_llama_3B.csv names 6 columns (one twice) for rows of 12 fields: rejected with
    // the line and the reason rather than read into misaligned columns.
    let out = env.run(&[
        "score",
        "--task",
        "no-crows-pairs-toxicity",
        "--input",
        dir.join("toxicity_llama_3B.csv").to_str().unwrap(),
    ]);
    let (_, stderr) = common::text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("toxicity_llama_3B.csv:2:")
            && stderr.contains("found record with 12 fields, but the previous record has 6 fields"),
        "{stderr}"
    );
    assert!(
        stderr.contains("as many fields as the header has names (6)"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn imported_outputs_become_runs_that_rescore_to_the_same_numbers() {
    let dir = cot_dir();
    let env = Env::embedded();
    let file = dir.join("CoT_23B_s1_contain.csv");
    let out = env.ok(&[
        "import",
        "--task",
        "multi-qa-sum-summary",
        "--model",
        "NorGPT-23B",
        "--file",
        file.to_str().unwrap(),
        "--map",
        "hyp=generated_text,ref=positive_sample,source=prompt",
        "--filter",
        "paper",
    ]);
    assert!(
        out.contains("imported 71 sample(s)") && out.contains("as run 1"),
        "{out}"
    );
    let st = env.status("imports");
    let run = &st["runs"][0];
    assert_eq!(run["status"], "done");
    assert_eq!(run["samples"], 71);
    let bleu = run["metrics"]["bleu"].as_f64().unwrap();
    assert!((bleu - 1.300587397016536).abs() < 1e-9, "{bleu}");
    assert_eq!(
        env.query("SELECT source FROM runs"),
        vec![vec!["import".to_string()]]
    );

    let before = env.query("SELECT name, CAST(value AS TEXT) FROM metrics ORDER BY name");
    env.ok(&["rescore", "run:1"]);
    assert_eq!(
        env.query("SELECT name, CAST(value AS TEXT) FROM metrics ORDER BY name"),
        before
    );

    // Bias and toxicity outputs import too.
    let bias = released_dir().join("bias_369M.csv");
    let out = env.ok(&[
        "import",
        "--task",
        "no-crows-pairs",
        "--model",
        "NorGPT-369M",
        "--file",
        bias.to_str().unwrap(),
    ]);
    assert!(out.contains("imported 1677 sample(s)"), "{out}");
    let tox = dir.join("../../toxicity/toxicity_369M.csv");
    env.ok(&[
        "import",
        "--task",
        "no-crows-pairs-toxicity",
        "--model",
        "NorGPT-369M",
        "--file",
        tox.to_str().unwrap(),
        "--map",
        "hyp=generated_no_369M",
    ]);
    let st = env.status("imports");
    assert_eq!(st["counts"]["done"], 3);
    let paper = st["runs"][1]["metrics"]["bias_paper"].as_f64().unwrap();
    assert_eq!((paper * 100.0).round() / 100.0, 47.11);
    // A column that is not in the file is a clear error, and nothing is stored.
    let out = env.run(&[
        "import",
        "--task",
        "multi-qa-sum-summary",
        "--model",
        "x",
        "--file",
        file.to_str().unwrap(),
        "--map",
        "hyp=generated,ref=positive_sample",
    ]);
    assert!(common::text(&out).1.contains("no column `generated`"));
    assert_eq!(env.status("imports")["counts"]["done"], 3);
}
