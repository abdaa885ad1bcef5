//! `nlebench compare`: paired tests between two runs on their shared examples, and refusals
//! for runs that did not see the same examples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
    let drawn = id("a/no-crows-pairs/drawn/seed=0");
    let out = env.run(&["compare", &pa, &drawn]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("different inputs in the two runs"), "{err}");
    let out = env.run(&["compare", &pa, "999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 999"));
}
