//! Model loading: sharded safetensors, the pytorch_model.bin fallback, transformers 4.x and
//! 5.x config layouts, f16/bf16, and clear errors for missing shards and mismatched shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use engine::LoadedModel;
use engine::files::in_dir;
use test_support::fixture;
use test_support::models::{load_dir, max_diff};
use types::Dtype;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn reference_logits() -> (Vec<u32>, Tensor) {
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-llama").join("reference.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["prompt_ids"][0].clone()).unwrap();
    let t = candle_core::safetensors::load(
        fixture("tiny-llama").join("reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    (ids, t["logits_row0"].squeeze(0).unwrap())
}

fn logits(dir: &Path, dtype: Dtype, ids: &[u32]) -> Tensor {
    test_support::models::logits(&load_dir(dir, dtype), ids)
}

#[test]
fn pytorch_bin_checkpoints_load() {
    let (ids, want) = reference_logits();
    assert!(max_diff(&logits(&fixture("tiny-llama-bin"), Dtype::F32, &ids), &want) < 1e-4);
}

#[test]
fn sharded_safetensors_load_and_a_missing_shard_is_named() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture("tiny-llama"), d.path());
    let st = d.path().join("model.safetensors");
    let all = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    std::fs::remove_file(&st).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let tensors: HashMap<String, Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), all[*n].clone()))
            .collect();
        candle_core::safetensors::save(&tensors, d.path().join(shard)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), shard.into());
        }
    }
    std::fs::write(
        d.path().join("model.safetensors.index.json"),
        serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )
    .unwrap();
    let (ids, want) = reference_logits();
    assert!(max_diff(&logits(d.path(), Dtype::F32, &ids), &want) < 1e-4);

    std::fs::remove_file(d.path().join("model-00002-of-00002.safetensors")).unwrap();
    let e = in_dir(d.path(), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("has no model-00002-of-00002.safetensors"),
        "{e}"
    );
}

#[test]
fn transformers_4_config_layout_loads_and_unsupported_rope_scaling_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture("tiny-llama"), d.path());
    let cfg = d.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let theta = v["rope_parameters"]["rope_theta"].clone();
    let o = v.as_object_mut().unwrap();
    o.remove("rope_parameters");
    o.remove("dtype");
    o.insert("rope_theta".into(), theta);
    o.insert("rope_scaling".into(), serde_json::Value::Null);
    o.insert("torch_dtype".into(), "float32".into());
    std::fs::write(&cfg, v.to_string()).unwrap();
    let (ids, want) = reference_logits();
    assert!(max_diff(&logits(d.path(), Dtype::F32, &ids), &want) < 1e-4);

    let mut load_error = |rope: serde_json::Value| {
        v["rope_scaling"] = rope;
        std::fs::write(&cfg, v.to_string()).unwrap();
        LoadedModel::load(&in_dir(d.path(), None).unwrap(), Dtype::F32, &Device::Cpu)
            .unwrap_err()
            .to_string()
    };
    let e = load_error(serde_json::json!({"rope_type": "longrope", "factor": 4.0}));
    assert!(
        e.contains("rope scaling `longrope` is not supported"),
        "{e}"
    );
    assert!(
        e.contains("supported: rope scaling default, linear, dynamic, yarn and llama3"),
        "{e}"
    );
    // The file is valid: the fix is another model or a newer nlebench, not repairing it.
    assert!(
        e.contains("the file itself is valid") && !e.contains("repair"),
        "{e}"
    );
    // A supported scaling without a key it needs is the file's fault.
    let e = load_error(serde_json::json!({"rope_type": "yarn", "factor": 4.0}));
    assert!(
        e.contains("rope scaling `yarn` without `original_max_position_embeddings`")
            && e.contains("repair config.json"),
        "{e}"
    );
}

#[test]
fn half_precision_logits_stay_close_to_f32() {
    let (ids, want) = reference_logits();
    for (dtype, tol) in [(Dtype::F16, 2e-2), (Dtype::Bf16, 1.5e-1)] {
        let d = max_diff(&logits(&fixture("tiny-llama"), dtype, &ids), &want);
        assert!(d < tol, "{dtype:?}: max |Δ| {d}");
    }
}

#[test]
fn weights_that_do_not_fit_the_config_are_reported() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture("tiny-llama"), d.path());
    let cfg = d.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"intermediate_size\": 96", "\"intermediate_size\": 100");
    std::fs::write(&cfg, text).unwrap();
    let e =
        LoadedModel::load(&in_dir(d.path(), None).unwrap(), Dtype::F32, &Device::Cpu).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("the weights do not match config.json"),
        "{msg}"
    );
    assert!(
        msg.contains("mlp.gate_proj.weight") && msg.contains("shape mismatch"),
        "{msg}"
    );
}

#[test]
fn the_start_token_is_the_tokenizers_bos_or_its_eos_where_it_declares_none() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture("tiny-llama"), d.path());
    // Without tokenizer_config.json: config.json's bos_token_id.
    assert_eq!(load_dir(d.path(), Dtype::F32).bos_id, 0);
    let m = load_dir(d.path(), Dtype::F32);
    let id = |t: &str| m.tokenizer.token_to_id(t).unwrap();
    let (bos, eos) = (
        m.tokenizer.id_to_token(300).unwrap(),
        m.tokenizer.id_to_token(301).unwrap(),
    );
    let (bos, eos) = (bos.as_str(), eos.as_str());
    let write = |config: serde_json::Value| {
        std::fs::write(d.path().join("tokenizer_config.json"), config.to_string()).unwrap()
    };
    // The tokenizer's BOS (Llama 3's <|begin_of_text|>, Gemma's <bos>), also as an AddedToken.
    write(serde_json::json!({"bos_token": bos, "eos_token": eos}));
    assert_eq!(load_dir(d.path(), Dtype::F32).bos_id, id(bos));
    write(serde_json::json!({"bos_token": {"content": bos, "special": true}}));
    assert_eq!(load_dir(d.path(), Dtype::F32).bos_id, id(bos));
    // A tokenizer without BOS (Qwen): its EOS, as lm-evaluation-harness's prefix token.
    write(serde_json::json!({"bos_token": null, "eos_token": eos}));
    assert_eq!(load_dir(d.path(), Dtype::F32).bos_id, id(eos));
}
