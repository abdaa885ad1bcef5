//! MAUVE's featurization (the last token's final hidden state) equals mauve-text's
//! `featurize_tokens_from_model` on tiny-gpt2 (tests/fixtures/mauve_reference.json, recorded by
//! tools/reference/mauve_reference.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use engine::LastHiddenState;
use metrics::mauve::Featurizer;

#[test]
fn features_are_mauve_texts_last_token_hidden_states() {
    let r = test_support::read_json(&test_support::fixture("mauve_reference.json"));
    let f = &r["features"];
    let model = test_support::models::load("tiny-gpt2");
    let texts: Vec<&str> = f["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let got = LastHiddenState {
        model: &model,
        max_tokens: f["max_tokens"].as_u64().unwrap() as usize,
    }
    .features(&texts)
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
    // Featurized in batches of mixed lengths, each text keeps the bits it gets alone.
    let featurizer = LastHiddenState {
        model: &model,
        max_tokens: f["max_tokens"].as_u64().unwrap() as usize,
    };
    for (i, t) in texts.iter().enumerate() {
        let alone = featurizer.features(&[t]).unwrap();
        assert_eq!(alone, got[i..=i], "text {i} alone and in a batch");
    }
    assert!(texts.len() > 2, "a batch of several texts");
}
