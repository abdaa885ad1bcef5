//! MAUVE equals the mauve-text package on identical feature vectors
//! (tests/fixtures/mauve_reference.json, recorded by tools/reference/mauve_reference.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use metrics::mauve::{MauveConfig, mauve};

#[test]
fn mauve_frontier_integral_and_histograms_equal_mauve_text() {
    let r = test_support::read_json(&test_support::fixture("mauve_reference.json"));
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
