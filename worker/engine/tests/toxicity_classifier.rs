//! A multi-label BERT toxicity classifier gives transformers' text-classification pipeline
//! scores (`top_k=None`: a sigmoid per label) on the tiny fixture of
//! tools/parity/make_toxicity_fixture.py.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use engine::bert::BertClassifier;

/// The classifier of fixture `name`, on the CPU.
fn load(name: &str) -> BertClassifier {
    let files = engine::locate(
        &types::Source::Path {
            path: test_support::fixture(name),
        },
        &engine::Locations {
            models_dir: ".".into(),
            hub: types::HubSettings::at("."),
        },
        false,
    )
    .unwrap();
    BertClassifier::load(&files, &Device::Cpu).unwrap()
}

#[test]
fn multi_label_scores_equal_transformers() {
    let dir = test_support::fixture("tiny-bert-toxicity");
    let clf = load("tiny-bert-toxicity");
    assert!(clf.multi_label);
    let r = test_support::read_json(&dir.join("reference.json"));
    let texts: Vec<String> = serde_json::from_value(r["texts"].clone()).unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = clf.probabilities(&refs, 3).unwrap();
    for (i, scores) in r["scores"].as_array().unwrap().iter().enumerate() {
        for (k, label) in clf.labels.iter().enumerate() {
            let want = scores[label].as_f64().unwrap();
            assert!(
                (got[i][k] - want).abs() < 1e-5,
                "text {i} {label}: {} vs transformers {want}",
                got[i][k]
            );
        }
    }
}

#[test]
fn a_single_label_classifier_gives_softmax_probabilities() {
    let clf = load("tiny-bert-nli");
    assert!(!clf.multi_label);
    let p = clf.probabilities(&["Hun handlet mat."], 1).unwrap();
    assert!((p[0].iter().sum::<f64>() - 1.0).abs() < 1e-9);
}
