//! The entailment ratio's BERT NLI classifier equals transformers' BertForSequenceClassification
//! on a tiny random model in the layout of NorGLM/Entailment (tools/parity/make_bert_fixture.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use candle_core::Device;
use engine::EngineError;
use engine::bert::BertClassifier;
use engine::files::in_dir;
use metrics::bootstrap::Bootstrap;
use metrics::entailment;
use test_support::fixture;

#[test]
fn bert_nli_logits_labels_and_truncation_equal_transformers() {
    let dir = fixture("tiny-bert-nli");
    let clf = BertClassifier::load(&in_dir(&dir, None).unwrap(), &Device::Cpu).unwrap();
    entailment::check_labels(&clf.labels).unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let texts: Vec<&str> = r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let want_ids: Vec<Vec<u32>> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| clf.encode(t).unwrap()).collect();
    assert_eq!(
        ids, want_ids,
        "token ids ([CLS] … [SEP] … [SEP], truncated at 512)"
    );
    assert_eq!(
        ids.last().unwrap().len(),
        512,
        "the long article is truncated"
    );
    // One padded batch, as transformers ran it.
    let logits: Vec<Vec<f32>> = clf.logits(&ids).unwrap().to_vec2().unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(r["logits"].clone()).unwrap();
    for (row, (a, b)) in logits.iter().zip(&want).enumerate() {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "row {row}: {a:?} vs {b:?}");
        }
    }
    let pairs: Vec<(String, String)> = serde_json::from_value(r["pairs"].clone()).unwrap();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let labels = entailment::labels(&clf, &pairs).unwrap();
    let want_labels: Vec<usize> = serde_json::from_value(r["labels"].clone()).unwrap();
    assert_eq!(labels, want_labels);
    let shares = entailment::shares(&labels, &Bootstrap::default());
    let n = labels.len() as f64;
    for (k, m) in shares.iter().enumerate() {
        assert_eq!(m.name, entailment::NAMES[k]);
        let expect = want_labels.iter().filter(|&&l| l == k).count() as f64 / n;
        assert!((m.value - expect).abs() < 1e-12, "{}", m.name);
    }
}

#[test]
fn a_causal_lm_is_refused_as_nli_classifier() {
    let err = BertClassifier::load(&in_dir(&fixture("tiny-gpt2"), None).unwrap(), &Device::Cpu)
        .unwrap_err();
    assert!(matches!(err, EngineError::UnknownModelType { .. }), "{err}");
    assert!(err.to_string().contains("bert"), "{err}");
}
