//! MAUVE equals the mauve-text package on identical feature vectors
//! (tests/fixtures/mauve_reference.json, recorded by tools/reference/mauve_reference.py).

use std::path::PathBuf;

use worker::metrics::mauve::{MauveConfig, mauve};

#[test]
fn mauve_frontier_integral_and_histograms_equal_mauve_text() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mauve_reference.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rows = |k: &str| -> Vec<Vec<f32>> { serde_json::from_value(case[k].clone()).unwrap() };
        let cfg = MauveConfig {
            num_buckets: case["num_buckets"].as_u64().map(|b| b as usize),
            ..MauveConfig::default()
        };
        let got = mauve(&rows("p"), &rows("q"), &cfg).unwrap();
        for (field, value) in [
            ("mauve", got.mauve),
            ("frontier_integral", got.frontier_integral),
            ("mauve_star", got.mauve_star),
            ("frontier_integral_star", got.frontier_integral_star),
        ] {
            let want = case[field].as_f64().unwrap();
            assert!(
                (value - want).abs() < 1e-6,
                "{name} {field}: {value} vs {want}"
            );
        }
        // Cluster numbering is arbitrary: compare the (P, Q) mass of each cluster as a set.
        let pairs = |p: &[f64], q: &[f64]| {
            let mut v: Vec<(i64, i64)> = p
                .iter()
                .zip(q)
                .map(|(a, b)| ((a * 1e9).round() as i64, (b * 1e9).round() as i64))
                .collect();
            v.sort();
            v
        };
        let want_p: Vec<f64> = serde_json::from_value(case["p_hist"].clone()).unwrap();
        let want_q: Vec<f64> = serde_json::from_value(case["q_hist"].clone()).unwrap();
        assert_eq!(
            pairs(&got.p_hist, &got.q_hist),
            pairs(&want_p, &want_q),
            "{name}"
        );
    }
}

#[test]
fn mauve_of_an_empty_side_is_undefined() {
    assert!(mauve(&[], &[vec![1.0, 2.0]], &MauveConfig::default()).is_none());
}

#[test]
fn features_are_mauve_texts_last_token_hidden_states() {
    use candle_core::Device;
    use orchestrator::spec::Dtype;
    use worker::engine::LoadedModel;
    use worker::engine::files::in_dir;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("mauve_reference.json")).unwrap())
            .unwrap();
    let f = &r["features"];
    let model = LoadedModel::load(
        &in_dir(&root.join("tiny-gpt2"), None).unwrap(),
        Dtype::F32,
        &Device::Cpu,
    )
    .unwrap();
    let texts: Vec<&str> = f["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let got = worker::metrics::mauve::features(
        &model,
        &texts,
        f["max_tokens"].as_u64().unwrap() as usize,
    )
    .unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(f["features"].clone()).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "text {i}: max |diff| {worst}");
    }
}
