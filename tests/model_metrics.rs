//! Model-based metrics inside stored runs: a summarization run computes its entailment ratios
//! and MAUVE with the metric models the sweep names, equal to what `nlebench score` gives on
//! the same outputs; a metric model that cannot be loaded leaves the run done with those
//! metrics listed as left out, and why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Env, root};

const ARTICLES: [(&str, &str); 8] = [
    (
        "Regjeringen legger fram statsbudsjettet i dag. Det blir mer penger til skole.",
        "Mer penger til skole.",
    ),
    (
        "Rosenborg vant 2-1 over Molde. Vinnermålet kom sent.",
        "Rosenborg slo Molde.",
    ),
    (
        "Det ventes snø i Trøndelag i natt. Vegvesenet ber folk kjøre forsiktig.",
        "Snø i Trøndelag.",
    ),
    (
        "Oslo kommune bygger ny skole på Tøyen. Den åpner i 2027.",
        "Ny skole på Tøyen.",
    ),
    (
        "Strømprisen stiger igjen i Sør-Norge. Mange husholdninger merker det.",
        "Strømprisen stiger.",
    ),
    (
        "Hurtigruten får nye skip neste år. De skal gå på batteri.",
        "Nye skip med batteri.",
    ),
    (
        "En ulv er observert nær Hamar. Bøndene er bekymret.",
        "Ulv sett nær Hamar.",
    ),
    (
        "Bergen fikk rekordmye regn i oktober. Det regnet 29 dager.",
        "Rekordregn i Bergen.",
    ),
];

fn sweep(env: &Env, name: &str, metric_models: &str) -> std::path::PathBuf {
    let mut csv = String::from("article,positive_sample\n");
    for (a, s) in ARTICLES {
        csv += &format!("\"{a}\",\"{s}\"\n");
    }
    let data = env.write("cnn.csv", &csv);
    env.write(
        &format!("{name}.toml"),
        &format!(
            r#"name = "{name}"
tasks = ["no-cnn-dailymail"]
[datasets]
no-cnn-dailymail = "path:{}"
{metric_models}
[[models]]
name = "tiny"
source = "random:norgpt-tiny@3"
[[settings]]
name = "short"
decoding = {{ max_new_tokens = 12 }}
"#,
            data.display()
        ),
    )
}

#[test]
fn a_stored_run_has_the_entailment_ratios_and_mauve_that_score_computes() {
    let env = Env::embedded();
    let (nli, lm) = (
        root().join("tests/fixtures/tiny-bert-nli"),
        root().join("tests/fixtures/tiny-gpt2"),
    );
    let s = sweep(
        &env,
        "summ",
        &format!(
            "[metric_models]\nnli_model = \"path:{}\"\nmauve_model = \"path:{}\"\n",
            nli.display(),
            lm.display()
        ),
    );
    env.ok(&["run", s.to_str().unwrap()]);
    let st = env.status("summ");
    let run = &st["runs"][0];
    assert_eq!(run["status"], "done", "{st}");
    assert_eq!(run["notes"], serde_json::json!([]), "{st}");
    let stored = |m: &str| {
        run["metrics"][m]
            .as_f64()
            .unwrap_or_else(|| panic!("no {m}: {st}"))
    };

    let exported = env.dir.path().join("samples.csv");
    env.ok(&[
        "export",
        "summ",
        "--samples",
        "-o",
        exported.to_str().unwrap(),
    ]);
    let out = env.ok(&[
        "score",
        "--task",
        "no-cnn-dailymail",
        "--input",
        exported.to_str().unwrap(),
        "--map",
        "hyp=output,ref=reference,source=source",
        "--nli-model",
        &format!("path:{}", nli.display()),
        "--mauve-model",
        &format!("path:{}", lm.display()),
        "--json",
    ]);
    let scored: serde_json::Value = serde_json::from_str(&out).unwrap();
    for m in [
        "entailment_ratio",
        "contradiction_ratio",
        "neutral_ratio",
        "mauve",
        "rouge_l",
    ] {
        let want = scored["metrics"][m]
            .as_f64()
            .unwrap_or_else(|| panic!("score gave no {m}: {scored}"));
        assert!(
            (stored(m) - want).abs() < 1e-12,
            "{m}: stored {} vs score {want}",
            stored(m)
        );
    }
    let ratios =
        stored("entailment_ratio") + stored("contradiction_ratio") + stored("neutral_ratio");
    assert!(
        (ratios - 1.0).abs() < 1e-9,
        "the three ratios are shares: {ratios}"
    );

    // Rescoring recomputes them with the same models.
    let again = env.ok(&["rescore", "summ"]);
    assert!(again.contains("rescored 1 run(s)"), "{again}");
    let st2 = env.status("summ");
    assert_eq!(st2["runs"][0]["metrics"]["mauve"], run["metrics"]["mauve"]);
}

#[test]
fn a_metric_model_that_cannot_be_loaded_leaves_the_run_done_with_the_reason() {
    let env = Env::embedded();
    // The task's own models (hf:NorGLM/Entailment, hf:openai-community/gpt2-large) are not in this cache and
    // the Hub is off.
    let s = sweep(&env, "offline", "");
    env.ok(&["run", s.to_str().unwrap()]);
    let st = env.status("offline");
    let run = &st["runs"][0];
    assert_eq!(run["status"], "done", "{st}");
    assert!(run["metrics"]["rouge_l"].is_number(), "{st}");
    assert!(run["metrics"]["mauve"].is_null() && run["metrics"]["entailment_ratio"].is_null());
    let notes: Vec<String> = serde_json::from_value(run["notes"].clone()).unwrap();
    assert!(
        notes.iter().any(|n| n.starts_with(
            "entailment ratios left out: the NLI model hf:NorGLM/Entailment could not be loaded"
        )),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with(
            "MAUVE left out: the feature model hf:openai-community/gpt2-large could not be loaded"
        )),
        "{notes:?}"
    );
    let table = env.ok(&["status", "offline"]);
    assert!(table.contains("2 metric note(s)"), "{table}");
}
