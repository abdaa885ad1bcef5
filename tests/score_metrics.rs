//! `nlebench score` on generation tasks: the entailment ratios with a BERT NLI classifier, and
//! what happens when a metric's model or data is missing (a note, the other metrics intact).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use crate::common;

use common::{Env, root, text};

/// The fixture's (article, summary) pairs as a JSON Lines outputs file; returns the labels
/// transformers gave them.
fn nli_outputs(env: &Env) -> (String, Vec<usize>) {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/tiny-bert-nli/reference.json"))
            .unwrap(),
    )
    .unwrap();
    let lines: Vec<String> = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            serde_json::json!({"article": p[0], "summary": p[1], "gold": "Regjeringen foreslår lavere skatt."})
                .to_string()
        })
        .collect();
    let path = env.write("outputs.jsonl", &(lines.join("\n") + "\n"));
    let labels = serde_json::from_value(r["labels"].clone()).unwrap();
    (path.display().to_string(), labels)
}

#[test]
fn entailment_ratios_are_the_label_shares_of_the_nli_classifier() {
    let env = Env::embedded();
    let (input, labels) = nli_outputs(&env);
    let clf = root().join("tests/fixtures/tiny-bert-nli");
    let args = [
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        &input,
        "--map",
        "hyp=summary,ref=gold,source=article",
        "--nli-model",
        clf.to_str().unwrap(),
        "--json",
    ];
    let got: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
    let n = labels.len() as f64;
    for (k, name) in ["contradiction_ratio", "entailment_ratio", "neutral_ratio"]
        .iter()
        .enumerate()
    {
        let want = labels.iter().filter(|&&l| l == k).count() as f64 / n;
        assert_eq!(got["metrics"][name].as_f64(), Some(want), "{name}: {got}");
        assert_eq!(got["n"][name], 5);
    }
    assert!(got["metrics"]["rouge_l"].is_number());

    // Without the classifier: the other metrics, and a note saying how to get these.
    let out = env.run(
        &args[..args.len() - 3]
            .iter()
            .chain(&["--json"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success());
    let (stdout, stderr) = text(&out);
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(got["metrics"].get("entailment_ratio").is_none(), "{got}");
    assert!(got["metrics"]["bleu"].is_number());
    assert!(
        stderr.contains("entailment ratios left out") && stderr.contains("--nli-model"),
        "{stderr}"
    );

    // With the classifier but without the article column: a clear error.
    let out = env.run(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        &input,
        "--map",
        "hyp=summary,ref=gold",
        "--nli-model",
        clf.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let e = text(&out).1;
    assert!(e.contains("source=COLUMN") && e.contains("article"), "{e}");

    // A causal LM is not an NLI classifier.
    let gpt2 = root().join("tests/fixtures/tiny-gpt2");
    let mut wrong = args.to_vec();
    wrong[8] = gpt2.to_str().unwrap();
    let out = env.run(&wrong);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("model_type `gpt2` is not supported"));
}

#[test]
fn mauve_with_a_feature_model_and_a_note_without_one() {
    let env = Env::embedded();
    let (input, _) = nli_outputs(&env);
    let lm = root().join("tests/fixtures/tiny-gpt2");
    let score = |map: &str, with_model: bool| {
        let mut args = vec![
            "score",
            "--task",
            "multi-qa-sum-summary",
            "--input",
            &input,
            "--map",
            map,
            "--json",
        ];
        if with_model {
            args.extend(["--mauve-model", lm.to_str().unwrap()]);
        }
        let out = env.run(&args);
        assert!(out.status.success(), "{}", text(&out).1);
        let (stdout, stderr) = text(&out);
        (
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
            stderr,
        )
    };
    // P = the references (here the articles), Q = the generations, as the library computes.
    let (got, _) = score("hyp=summary,ref=article", true);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let col = |c: &str| -> Vec<String> {
        rows.iter()
            .map(|r| r[c].as_str().unwrap().to_string())
            .collect()
    };
    let (articles, summaries) = (col("article"), col("summary"));
    let model = engine::LoadedModel::load(
        &engine::files::in_dir(&lm, None).unwrap(),
        types::Dtype::F32,
        &engine::device::select(types::DeviceSpec::Auto).unwrap(),
    )
    .unwrap();
    let feats = |t: &[String]| {
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        metrics::mauve::Featurizer::features(
            &engine::LastHiddenState {
                model: &model,
                max_tokens: 256,
            },
            &t,
        )
        .unwrap()
    };
    let want =
        metrics::mauve::mauve(&feats(&articles), &feats(&summaries), &Default::default()).unwrap();
    assert_eq!(got["metrics"]["mauve"].as_f64(), Some(want.mauve), "{got}");
    assert_eq!(got["n"]["mauve"], 5);
    let (none, stderr) = score("hyp=summary,ref=article", false);
    assert!(none["metrics"].get("mauve").is_none());
    assert!(
        stderr.contains("MAUVE left out") && stderr.contains("--mauve-model"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(
    nlebench_system_punkt,
    ignore = "a system-wide NLTK Punkt model is installed (/usr/share/nltk_data or the like), which the binary always finds"
)]
fn without_the_punkt_model_bleu_and_rouge_remain_and_a_note_says_how_to_install_it() {
    let system_punkt = [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ]
    .iter()
    .any(|d| {
        std::path::Path::new(d)
            .join("tokenizers/punkt_tab/english")
            .is_dir()
    });
    assert!(
        !system_punkt,
        "a system-wide NLTK Punkt model is installed: this test cannot hide it"
    );
    let mut env = Env::embedded();
    let empty = env.dir.path().join("no-nltk");
    std::fs::create_dir_all(&empty).unwrap();
    env.extra
        .push(("NLTK_DATA".into(), empty.display().to_string()));
    env.extra.push(("HOME".into(), empty.display().to_string()));
    let (input, _) = nli_outputs(&env);
    let out = env.run(&[
        "score",
        "--task",
        "multi-qa-sum-summary",
        "--input",
        &input,
        "--map",
        "hyp=summary,ref=gold",
        "--json",
    ]);
    assert!(out.status.success());
    let (stdout, stderr) = text(&out);
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(got["metrics"]["bleu"].is_number() && got["metrics"]["rouge_1"].is_number());
    assert!(got["metrics"].get("distinct_1").is_none() && got["metrics"].get("entr").is_none());
    assert!(
        stderr.contains("Distinct-n and ENTR left out") && stderr.contains("fetch_punkt.py"),
        "{stderr}"
    );
    // A run of two generation tasks says it once, not once per task.
    let quickstart = root().join("experiments/sweeps/quickstart.toml");
    let out = env.run(&["run", quickstart.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("Distinct-n and ENTR left out").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn classification_scores_equal_scikit_learn_and_a_bad_label_is_named() {
    let env = Env::embedded();
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/classification_reference.json"))
            .unwrap(),
    )
    .unwrap();
    let case = &r["cases"][0];
    assert_eq!(case["name"], "binary");
    let names = ["False", "True"];
    // Gold labels as the dataset writes them, predictions as class indices.
    let mut csv = String::from("prediction,label\n");
    for (p, g) in case["pred"]
        .as_array()
        .unwrap()
        .iter()
        .zip(case["gold"].as_array().unwrap())
    {
        csv += &format!("{},{}\n", p, names[g.as_u64().unwrap() as usize]);
    }
    let input = env.write("boolq.csv", &csv);
    let out = env.ok(&[
        "score",
        "--task",
        "no-boolq",
        "--input",
        input.to_str().unwrap(),
        "--map",
        "pred=prediction,label=label",
        "--json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    for m in ["accuracy", "f1", "f1_macro", "mcc"] {
        let (a, b) = (
            got["metrics"][m].as_f64().unwrap(),
            case[m].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-12, "{m}: {a} vs {b}");
    }
    assert_eq!(got["rows_scored"], 200);

    let bad = env.write("bad.csv", "prediction,label\n1,True\n0,kanskje\n");
    let out = env.run(&[
        "score",
        "--task",
        "no-boolq",
        "--input",
        bad.to_str().unwrap(),
        "--map",
        "pred=prediction,label=label",
    ]);
    assert!(!out.status.success());
    let e = text(&out).1;
    assert!(
        e.contains("row 3") && e.contains("`kanskje`") && e.contains("False, True"),
        "{e}"
    );
    let out = env.run(&[
        "score",
        "--task",
        "no-boolq",
        "--input",
        bad.to_str().unwrap(),
        "--map",
        "hyp=prediction,ref=label",
    ]);
    assert!(
        text(&out)
            .1
            .contains("give `--map pred=COLUMN,label=COLUMN`")
    );
}
