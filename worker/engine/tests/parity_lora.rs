//! LoRA adapters merged into the base equal PEFT's outputs; sequence classification equals
//! transformers; adapters swap on a loaded base without reading it again; bad adapters fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::path::Path;

use candle_core::{Device, Tensor};
use engine::classify;
use engine::lora::{Adapter, merge};
use test_support::fixture;
use test_support::models::{load, logits, max_diff};
use types::Dtype;

fn reference(dir: &str) -> Tensor {
    candle_core::safetensors::load(fixture(dir).join("reference.safetensors"), &Device::Cpu)
        .unwrap()["logits"]
        .clone()
}

const TEXT: &str = "Norge er et langstrakt land i Nord-Europa med lange kyster og mange fjorder.";

#[test]
fn merged_lora_logits_equal_peft() {
    for (base, adapter) in [
        ("tiny-gpt2", "lora-gpt2"),
        ("tiny-llama", "lora-llama"),
        ("tiny-qwen2", "lora-qwen2"),
        ("tiny-gemma2", "lora-gemma2"),
    ] {
        let m = load(base);
        let merged = merge(&m, &Adapter::load(&fixture(adapter)).unwrap(), adapter).unwrap();
        let ids = m.encode(TEXT).unwrap();
        let want = reference(adapter).squeeze(0).unwrap();
        let d = max_diff(&logits(&merged, &ids), &want);
        assert!(d < 1e-4, "{adapter}: max |Δ| {d}");
        assert!(
            max_diff(&logits(&m, &ids), &want) > 1e-2,
            "{adapter}: the adapter matters"
        );
        eprintln!("{adapter}: largest |Δ logit| to PEFT {d:e}");
    }
}

#[test]
fn sequence_classification_equals_transformers() {
    let m = load("tiny-gpt2");
    let clf = merge(
        &m,
        &Adapter::load(&fixture("seq-cls-gpt2")).unwrap(),
        "seq-cls",
    )
    .unwrap();
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("seq-cls-gpt2").join("reference.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<&str> = r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let want: Vec<Vec<f32>> = reference("seq-cls-gpt2").to_vec2().unwrap();
    for batch in [1, 3] {
        let got = classify(&clf, &texts, batch).unwrap();
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() < 1e-4, "batch {batch}: {g:?} vs {w:?}");
            }
        }
    }
    let e = classify(&m, &texts, 2).unwrap_err();
    assert!(e.to_string().contains("no classification head"), "{e}");
}

#[test]
fn adapters_swap_without_reading_the_base_again() {
    let d = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture("tiny-gpt2")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.path().join(f.file_name().unwrap())).unwrap();
    }
    let m = test_support::models::load_dir(d.path(), Dtype::F32);
    std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
    let ids = m.encode(TEXT).unwrap();
    let a = merge(&m, &Adapter::load(&fixture("lora-gpt2")).unwrap(), "a").unwrap();
    let b = merge(&m, &Adapter::load(&fixture("seq-cls-gpt2")).unwrap(), "b").unwrap();
    let again = merge(&m, &Adapter::load(&fixture("lora-gpt2")).unwrap(), "a").unwrap();
    assert_eq!(max_diff(&logits(&a, &ids), &logits(&again, &ids)), 0.0);
    assert!(max_diff(&logits(&a, &ids), &logits(&b, &ids)) > 1e-3);
    assert_eq!(a.adapter.as_deref(), Some("a"));
}

fn copy_adapter(name: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(fixture(name)).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

#[test]
fn adapters_for_another_base_or_without_effect_are_rejected() {
    let gpt2 = load("tiny-gpt2");
    let e = merge(&gpt2, &Adapter::load(&fixture("lora-llama")).unwrap(), "x").unwrap_err();
    assert!(
        e.to_string()
            .contains("which the base model (gpt2) does not have"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("fix: use an adapter trained for this base model"),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    // fan_in_fan_out switched off: the update no longer has the Conv1D layout.
    copy_adapter("lora-gpt2", &d.path().join("fifo"));
    let cfg = d.path().join("fifo/adapter_config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"fan_in_fan_out\": true", "\"fan_in_fan_out\": false");
    std::fs::write(&cfg, text).unwrap();
    let e = merge(&gpt2, &Adapter::load(&d.path().join("fifo")).unwrap(), "x").unwrap_err();
    assert!(e.to_string().contains("fan_in_fan_out set wrongly?"), "{e}");

    // An untrained adapter (B = 0) changes nothing.
    copy_adapter("lora-gpt2", &d.path().join("zero"));
    let st = d.path().join("zero/adapter_model.safetensors");
    let mut t = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    for (k, v) in t.iter_mut() {
        if k.contains("lora_B") {
            *v = v.zeros_like().unwrap();
        }
    }
    candle_core::safetensors::save(&t, &st).unwrap();
    let e = merge(&gpt2, &Adapter::load(&d.path().join("zero")).unwrap(), "x").unwrap_err();
    assert!(
        e.to_string().contains("did not change the model's output"),
        "{e}"
    );
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "weights are packed on x86-64 only"
)]
fn packed_weights_are_held_once() {
    let m = load("tiny-llama");
    let packed: Vec<&String> = m.packed.tensor_names().collect();
    assert!(packed.len() >= 14, "linear weights packed: {packed:?}");
    for name in packed {
        assert!(!m.base.contains_key(name), "{name} held twice");
        assert!(m.base_tensor(name).unwrap().is_some(), "{name} readable");
    }
}
