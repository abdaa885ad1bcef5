//! Accuracy, F1 (binary and macro) and MCC equal scikit-learn on fixed label vectors
//! (tests/fixtures/classification_reference.json, from tools/reference/classification.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use metrics::classification::{correct, f1_binary, f1_macro, mcc};

#[test]
fn classification_metrics_equal_scikit_learn() {
    let r = test_support::read_json(&test_support::fixture("classification_reference.json"));
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let v = |k: &str| -> Vec<usize> { serde_json::from_value(case[k].clone()).unwrap() };
        let (gold, pred) = (v("gold"), v("pred"));
        let acc = correct(&pred, &gold).iter().sum::<f64>() / gold.len() as f64;
        let mut got = vec![
            ("accuracy", acc),
            ("f1_macro", f1_macro(&pred, &gold)),
            ("mcc", mcc(&pred, &gold)),
        ];
        if case.get("f1").is_some() {
            got.push(("f1", f1_binary(&pred, &gold)));
        }
        for (metric, value) in got {
            let want = case[metric].as_f64().unwrap();
            assert!(
                (value - want).abs() < 1e-12,
                "{name} {metric}: {value} vs {want}"
            );
        }
    }
}
