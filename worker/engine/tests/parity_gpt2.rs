//! The engine's GPT-2 perplexities equal Hugging Face transformers' on the tiny fixture
//! (recorded by tools/parity/make_gpt2_fixture.py with `evaluate` semantics).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::path::PathBuf;

use candle_core::Device;
use engine::files::in_dir;
use engine::{BatchSize, LoadedModel, Scoring, perplexities};
use types::Dtype;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-gpt2")
}

struct Ref {
    text: String,
    ids: Vec<u32>,
    ppl: f64,
    nll: f64,
}

fn reference() -> Vec<Ref> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture().join("reference_ppl.json")).unwrap(),
    )
    .unwrap();
    v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Ref {
            text: s["text"].as_str().unwrap().to_string(),
            ids: s["token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
            ppl: s["perplexity"].as_f64().unwrap(),
            nll: s["nll_sum"].as_f64().unwrap(),
        })
        .collect()
}

fn fixed(batch: usize, max_tokens: Option<usize>) -> Scoring {
    Scoring {
        batch: BatchSize::Fixed(batch),
        max_tokens,
        ..Scoring::default()
    }
}

fn model() -> LoadedModel {
    let files = in_dir(&fixture(), None).unwrap();
    LoadedModel::load(&files, Dtype::F32, &Device::Cpu).unwrap()
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let m = model();
    for r in reference() {
        assert_eq!(m.encode(&r.text).unwrap(), r.ids, "{}", r.text);
    }
}

#[test]
fn perplexities_equal_transformers_within_1e_4_relative() {
    let m = model();
    let refs = reference();
    assert!(refs.len() > 3, "the reference has sentences");
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let mut worst = 0.0f64;
    for batch in [1, 3, 16] {
        let got = perplexities(&m, &texts, &fixed(batch, None)).unwrap();
        assert_eq!(got.len(), refs.len(), "a perplexity per reference text");
        for (g, r) in got.iter().zip(&refs) {
            let rel = (g.perplexity - r.ppl).abs() / r.ppl;
            worst = worst.max(rel);
            assert!(
                rel < 1e-4,
                "batch {batch}: {:?}: ours {} vs transformers {} (rel {rel:e})",
                r.text,
                g.perplexity,
                r.ppl
            );
            assert!((g.nll_sum - r.nll).abs() / r.nll < 1e-4);
            assert_eq!(g.n_tokens, r.ids.len());
            assert!(!g.truncated);
        }
    }
    eprintln!("largest relative perplexity difference to transformers: {worst:e}");
}

#[test]
fn long_texts_are_truncated_and_flagged() {
    let m = model();
    let long = "Norge er et land i Nord-Europa. ".repeat(40);
    let s = perplexities(&m, &[long.as_str(), "Hei"], &fixed(2, Some(32))).unwrap();
    assert!(s[0].truncated);
    assert_eq!(s[0].n_tokens, 31);
    assert!(!s[1].truncated);
}

#[test]
fn empty_texts_are_rejected() {
    let m = model();
    let e = perplexities(&m, &["Hei", ""], &Scoring::default()).unwrap_err();
    assert!(e.to_string().contains("text 1 is empty"), "{e}");
}
