//! The significance tests equal their references (tests/fixtures/significance_reference.json,
//! from tools/reference/significance.py): McNemar's exact test within 1e-12 of statsmodels,
//! the exact randomization test exactly as scipy, Holm as statsmodels, and the paired
//! bootstrap within its Monte-Carlo error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use metrics::significance::{holm, mcnemar_exact, paired_bootstrap, randomization_exact};
use serde_json::Value;

fn reference() -> Value {
    test_support::read_json(&test_support::fixture("significance_reference.json"))
}

fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn mcnemar_exact_equals_statsmodels() {
    let cases = reference()["mcnemar"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "the reference has McNemar cases");
    for case in &cases {
        let (b, c) = (case["b"].as_u64().unwrap(), case["c"].as_u64().unwrap());
        let want = case["p"].as_f64().unwrap();
        let got = mcnemar_exact(b, c);
        assert!((got - want).abs() <= 1e-12, "b={b} c={c}: {got} vs {want}");
    }
}

#[test]
fn the_exact_randomization_test_equals_scipy_exactly() {
    let cases = reference()["randomization"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "the reference has randomization cases");
    for case in &cases {
        let d = floats(&case["d"]);
        let want = case["p"].as_f64().unwrap();
        assert_eq!(randomization_exact(&d), Some(want), "{d:?}");
    }
}

#[test]
fn holm_equals_statsmodels() {
    let cases = reference()["holm"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "the reference has Holm cases");
    for case in &cases {
        let got = holm(&floats(&case["p"]));
        let want = floats(&case["adjusted"]);
        assert_eq!(got.len(), want.len(), "an adjusted p per p: {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-12, "{got:?}");
        }
    }
}

#[test]
fn the_paired_bootstrap_agrees_within_its_monte_carlo_error() {
    let r = reference();
    let iterations = r["bootstrap_iterations"].as_u64().unwrap() as usize;
    let cases = r["bootstrap"].as_array().unwrap();
    assert!(!cases.is_empty(), "the reference has bootstrap cases");
    for case in cases {
        let (a, b) = (floats(&case["a"]), floats(&case["b"]));
        let want = case["p"].as_f64().unwrap();
        let (_, got) = paired_bootstrap(&a, &b, iterations, 42).unwrap();
        // The reference drew 20 times more often: the error is ours.
        let tol = 3.0 * (want * (1.0 - want) / iterations as f64).sqrt();
        assert!(
            (got - want).abs() <= tol.max(1e-12),
            "n={}: {got} vs {want} (tolerance {tol})",
            a.len()
        );
    }
}
