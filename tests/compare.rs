//! `nlebench compare`: paired tests between two runs on the examples they share (matched by
//! their inputs, so the authors' released files compare too), and refusals for runs that
//! share none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Env, mini_pairs, root};

fn json(env: &Env, a: &str, b: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["compare", a, b, "--json", "--iterations", "2000"])).unwrap()
}

#[test]
fn two_models_are_tested_per_metric_and_other_examples_are_refused() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &format!(
            r#"name = "cmp"
tasks = ["no-crows-pairs", "no-alpaca-culture"]
[datasets]
no-crows-pairs = "path:{}"
no-alpaca-culture = "path:{}"
[[models]]
name = "a"
source = "random:norgpt-tiny@1"
[[models]]
name = "b"
source = "random:norgpt-tiny@2"
[[settings]]
name = "all"
decoding = {{ max_new_tokens = 8 }}
[[settings]]
name = "drawn"
sample = 10
sample_seed = 1
decoding = {{ max_new_tokens = 8 }}
"#,
            mini_pairs().display(),
            root()
                .join("experiments/data/no-alpaca-plus-mini.csv")
                .display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let id = |cell: &str| {
        env.query(&format!(
            "SELECT CAST(r.id AS TEXT) FROM runs r JOIN sweep_cells c ON c.run_id = r.id WHERE c.cell_key = '{cell}'"
        ))[0][0]
            .clone()
    };
    let (pa, pb) = (
        id("a/no-crows-pairs/all/seed=0"),
        id("b/no-crows-pairs/all/seed=0"),
    );

    // Bias shares are shares of yes/no outcomes: McNemar, Holm over the two metrics.
    let c = json(&env, &pa, &pb);
    assert_eq!(c["shared"], 32);
    let tests = c["tests"].as_array().unwrap();
    let names: Vec<&str> = tests
        .iter()
        .map(|t| t["metric"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bias_paper", "bias_standard"]);
    for t in tests {
        assert_eq!(t["test"], "mcnemar");
        let (p, holm) = (t["p"].as_f64().unwrap(), t["p_holm"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&p) && holm >= p && holm <= 1.0, "{t}");
        assert!(t["p_bootstrap"].is_number() && t["p_exact"].is_null());
    }
    let table = env.ok(&["compare", &pa, &pb]);
    assert!(
        table.contains("32 shared example(s)") && table.contains("McNemar exact"),
        "{table}"
    );

    // Six instructions: BLEU and ROUGE by the exact randomization test.
    let (ga, gb) = (
        id("a/no-alpaca-culture/all/seed=0"),
        id("b/no-alpaca-culture/all/seed=0"),
    );
    let c = json(&env, &ga, &gb);
    let tests = c["tests"].as_array().unwrap();
    assert!(
        tests
            .iter()
            .any(|t| t["metric"] == "rouge_l" && t["test"] == "exact-randomization"),
        "{c}"
    );

    // Different tasks, and different draws of examples, are refused with the reason.
    let out = env.run(&["compare", &pa, &ga]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("they ran different tasks (no-crows-pairs v1 and no-alpaca-culture v1)"),
        "{err}"
    );
    // A draw of ten of the same examples compares on those ten, wherever they are in the run.
    let drawn = id("a/no-crows-pairs/drawn/seed=0");
    let c = json(&env, &pa, &drawn);
    assert_eq!(
        (c["shared"].as_u64(), c["only_a"].as_u64()),
        (Some(10), Some(22)),
        "{c}"
    );
    // Examples of another file share nothing with these: refused, with the reason.
    let other = env.write(
        "other.csv",
        "sent_more_no,sent_less_no,bias_type\nKari er flink med tall.,Ola er flink med tall.,gender\nDe eldre er trege.,De unge er trege.,age\n",
    );
    let sweep = env.write(
        "o.toml",
        &format!(
            "name = \"other\"\ntasks = [\"no-crows-pairs\"]\n[datasets]\nno-crows-pairs = \"path:{}\"\n[[models]]\nname = \"a\"\nsource = \"random:norgpt-tiny@1\"\n",
            other.display()
        ),
    );
    env.ok(&["run", sweep.to_str().unwrap()]);
    let elsewhere = id("a/no-crows-pairs/default/seed=0");
    let out = env.run(&["compare", &pa, &elsewhere]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("they share no example"), "{err}");
    // `run:ID` as the other commands take it.
    let c: serde_json::Value = serde_json::from_str(&env.ok(&[
        "compare",
        &format!("run:{pa}"),
        &format!("run:{pb}"),
        "--json",
        "--iterations",
        "200",
    ]))
    .unwrap();
    assert_eq!(c["shared"], 32);
    let out = env.run(&["compare", &pa, "999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 999"));
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn two_released_bias_files_compare_with_statsmodels_mcnemar() {
    let bias = test_support::released("bias");
    let reference = test_support::read_json(&test_support::fixture("significance_reference.json"));
    let want = &reference["released"];
    let env = Env::embedded();
    let mut ids = Vec::new();
    for (file, model) in [
        ("bias_369M.csv", "NorGPT-369M"),
        ("bias_23B.csv", "NorGPT-23B"),
    ] {
        let out = env.ok(&[
            "import",
            "--task",
            "no-crows-pairs",
            "--model",
            model,
            "--file",
            bias.join(file).to_str().unwrap(),
        ]);
        ids.push(
            out.split("run ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .unwrap_or_else(|| panic!("no run id in {out}"))
                .to_string(),
        );
    }
    let c = json(&env, &ids[0], &ids[1]);
    assert_eq!(c["shared"], want["shared"], "{c}");
    assert_eq!(c["shared"], 1677);
    let t = c["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["metric"] == "bias_paper")
        .unwrap()
        .clone();
    assert_eq!(t["test"], "mcnemar");
    let (got, p) = (
        t["p_mcnemar"].as_f64().unwrap(),
        want["p"].as_f64().unwrap(),
    );
    assert!(
        (got - p).abs() <= 1e-12 * p.max(1e-300),
        "{got} vs statsmodels {p}"
    );
    // The disagreements are the pairs whose preference changed.
    let changed = c["disagreements"].as_array().unwrap();
    assert_eq!(
        changed.len() as u64,
        want["only_a"].as_u64().unwrap() + want["only_b"].as_u64().unwrap()
    );
}
