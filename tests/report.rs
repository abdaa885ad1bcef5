//! `nlebench report`: runs imported from the authors' released outputs reproduce the
//! baselines recomputed from the same files; a perturbed copy is reported as differing; a
//! random-weight model on a practice file is inconclusive, with its reasons, whatever its
//! numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Env;

const BIAS: [(&str, &str); 6] = [
    ("bias_369M.csv", "NorGPT-369M"),
    ("bias_3B.csv", "NorGPT-3B"),
    ("bias_3B_continue.csv", "NorGPT-3B-continue"),
    ("bias_23B.csv", "NorGPT-23B"),
    ("bias_llama_3B.csv", "NorLlama-3B"),
    ("bias_6B_nb-gptj.csv", "NB-GPT-J-6B"),
];
const COT: [(&str, &str); 4] = [
    ("CoT_23B_s1_contain.csv", "NorGPT-23B"),
    ("CoT_3B_s1_contain.csv", "NorGPT-3B"),
    ("CoT_6B_s1_contain.csv", "NB-GPT-J-6B"),
    ("doc_grounded_qa_s1_GPT3.5.csv", "GPT-3.5"),
];

fn report(env: &Env, sweep: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["report", sweep, "--format", "json"])).unwrap()
}

#[test]
#[cfg_attr(
    not(nlebench_shared),
    ignore = "needs the authors' released outputs in ../shared/data/norglm-results (CI has them)"
)]
fn released_outputs_reproduce_their_baselines_and_a_perturbed_copy_differs() {
    let (bias, cot) = (
        test_support::released("bias"),
        test_support::released("cot/scene1"),
    );
    let env = Env::embedded();
    env.ok(&["migrate"]);
    env.import_released_baselines();
    for (file, model) in BIAS {
        let f = bias.join(file);
        env.ok(&[
            "import",
            "--task",
            "no-crows-pairs",
            "--model",
            model,
            "--file",
            f.to_str().unwrap(),
            "--sweep",
            "released",
        ]);
    }
    for (file, model) in COT {
        let f = cot.join(file);
        env.ok(&[
            "import",
            "--task",
            "cot-scene-1",
            "--model",
            model,
            "--file",
            f.to_str().unwrap(),
            "--map",
            "hyp=generated_text,ref=positive_sample",
            "--filter",
            "paper",
            "--sweep",
            "released",
        ]);
    }
    let r = report(&env, "released");
    let rows = r["rows"].as_array().unwrap();
    // Every baseline of the file has its run: 132 bias shares and 16 CoT scene-1 values.
    assert_eq!(rows.len(), 148, "{r}");
    let not_reproduced: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|row| row["verdict"] != "reproduced")
        .collect();
    assert!(not_reproduced.is_empty(), "{not_reproduced:?}");
    assert_eq!(r["overall"]["reproduced"], 148);
    let bias_row = rows
        .iter()
        .find(|row| row["model"] == "NorGPT-369M" && row["metric"] == "bias_paper")
        .unwrap();
    assert!((bias_row["baseline"].as_f64().unwrap() - 47.107931).abs() < 1e-9);
    let provenance = bias_row["provenance"].as_str().unwrap();
    assert!(
        provenance.contains("bias/bias_369M.csv")
            && provenance.contains("tools/reference/bias_shares.py"),
        "{provenance}"
    );
    assert!(
        rows.iter()
            .all(|row| row["reason"].as_str().unwrap().starts_with("the same ")),
        "each verdict says its evidence"
    );
    assert_eq!(bias_row["n"], 1677);
    assert_eq!(bias_row["baseline_n"], 1677);
    let md = env.ok(&["report", "released"]);
    assert!(md.contains("overall: 148 of 148 values reproduced"), "{md}");
    assert!(
        md.contains("no-crows-pairs: 132 of 132 values reproduced"),
        "{md}"
    );
    assert!(
        md.contains("cot-scene-1: 16 of 16 values reproduced"),
        "{md}"
    );
    let html = env.ok(&["report", "released", "--format", "html"]);
    assert!(html.contains("<table class=\"data report\">") && html.contains("reproduced"));
    let csv = env.ok(&["report", "released", "--format", "csv"]);
    assert!(
        csv.starts_with("task,model,adapter,setting,run_id,metric,value,ci_low,ci_high,baseline")
    );

    // A copy of the NorGPT-369M file with every fourth pair's perplexities swapped.
    let text = std::fs::read_to_string(bias.join("bias_369M.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let (more, less) = (
        headers.iter().position(|h| h == "perp_more").unwrap(),
        headers.iter().position(|h| h == "perp_less").unwrap(),
    );
    let perturbed = env.dir.path().join("bias_369M_perturbed.csv");
    let mut w = csv::Writer::from_path(&perturbed).unwrap();
    w.write_record(&headers).unwrap();
    for (i, rec) in rdr.records().enumerate() {
        let mut rec: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        if i % 4 == 0 {
            rec.swap(more, less);
        }
        w.write_record(&rec).unwrap();
    }
    w.flush().unwrap();
    env.ok(&[
        "import",
        "--task",
        "no-crows-pairs",
        "--model",
        "NorGPT-369M",
        "--file",
        perturbed.to_str().unwrap(),
        "--sweep",
        "perturbed",
    ]);
    let r = report(&env, "perturbed");
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["metric"] == "bias_paper")
        .unwrap()
        .clone();
    assert_eq!(row["verdict"], "differs", "{row}");
    assert!(r["overall"]["differs"].as_u64().unwrap() >= 1);
}

#[test]
fn a_sweep_without_runs_lists_its_baselines_as_waiting() {
    let env = Env::embedded();
    let sweep = env.write(
        "s.toml",
        &common::sweep_toml(
            "pending",
            &[("NorGPT-369M", "random:norgpt-tiny@1")],
            &[("two", 2)],
            10,
            &common::mini_pairs(),
        ),
    );
    env.ok(&["migrate"]);
    env.import_released_baselines();
    env.ok(&["submit", sweep.to_str().unwrap()]);
    let r = report(&env, "pending");
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        22,
        "the 22 NO-CrowS-Pairs baselines of NorGPT-369M"
    );
    assert!(rows.iter().all(|row| row["verdict"] == "no-run"), "{r}");
    let md = env.ok(&["report", "pending"]);
    assert!(
        md.contains(
            "0 of 22 values reproduced, 0 differ, 0 inconclusive, 0 not measured by the run, 22 without a run yet"
        ),
        "{md}"
    );
    let e = env.run(&["report", "nonesuch"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("no sweep named `nonesuch`"));
}

#[test]
fn a_random_model_on_the_practice_file_is_inconclusive_with_its_reasons() {
    let env = Env::embedded();
    // A random model named as the paper's, on the 32-pair practice file: its interval is wide
    // enough to hold the paper's numbers, which proves nothing.
    let sweep = env.write(
        "s.toml",
        &common::sweep_toml(
            "noise",
            &[("NorGPT-369M", "random:norgpt-tiny@1")],
            &[("all", 32)],
            32,
            &common::mini_pairs(),
        ),
    );
    env.ok(&["migrate"]);
    env.import_released_baselines();
    env.ok(&["run", sweep.to_str().unwrap()]);
    let r = report(&env, "noise");
    let rows = r["rows"].as_array().unwrap();
    let measured: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|row| row["verdict"] != "not-measured")
        .collect();
    assert!(!measured.is_empty(), "{r}");
    for row in &measured {
        assert_eq!(row["verdict"], "inconclusive", "{row}");
        let why = row["reason"].as_str().unwrap();
        assert!(
            why.contains("random weights")
                && why.contains("dataset replaced")
                && why.contains("n = "),
            "{why}"
        );
    }
    assert_eq!(r["overall"]["reproduced"], 0, "{r}");
    let md = env.ok(&["report", "noise"]);
    assert!(md.contains("0 of 22 values reproduced"), "{md}");
    assert!(md.contains("n = 32 of 1677"), "{md}");
    let csv = env.ok(&["report", "noise", "--format", "csv"]);
    assert!(
        csv.lines().next().unwrap().contains(",verdict,reason"),
        "{csv}"
    );
    // With a margin, the width of the evidence is said too: 32 pairs cannot show ±2 points.
    let margin: serde_json::Value =
        serde_json::from_str(&env.ok(&["report", "noise", "--format", "json", "--margin", "2"]))
            .unwrap();
    let bias = margin["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["metric"] == "bias_paper")
        .unwrap_or_else(|| panic!("{margin}"));
    assert_eq!(bias["verdict"], "inconclusive", "{bias}");
    assert_eq!(bias["margin"], 2.0, "{bias}");
    let why = bias["reason"].as_str().unwrap();
    assert!(why.contains("> margin 2"), "{why}");
}
