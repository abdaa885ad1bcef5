//! bf16 and f16 equal Hugging Face transformers in the same dtype on every architecture's tiny
//! fixture (`tools/parity/half_reference.py` records transformers' half-precision logits;
//! reference.safetensors holds its f32 ones): for each prompt alone, at every position, the
//! engine's logits differ from transformers' by at most twice the largest gap between
//! transformers' own half-precision and f32 logits on that fixture (half precision's rounding
//! noise there; on Mixtral it includes a top-2 routing flip that bf16 rounding causes in
//! transformers and in the engine alike, on different prompts).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use candle_core::{Device, Tensor};
use test_support::fixture;
use test_support::models::{ARCHS, load_dir, logits, max_diff};
use types::Dtype;

fn tensors(name: &str, file: &str) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name).join(file), &Device::Cpu).unwrap()
}

#[test]
fn half_precision_logits_equal_transformers_within_its_own_rounding() {
    for arch in ARCHS {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(arch).join("reference.json")).unwrap(),
        )
        .unwrap();
        let prompts: Vec<Vec<u32>> = serde_json::from_value(json["prompt_ids"].clone()).unwrap();
        let f32_ref = tensors(arch, "reference.safetensors");
        let half_ref = tensors(arch, "reference_half.safetensors");
        for (dtype, label) in [(Dtype::Bf16, "bf16"), (Dtype::F16, "f16")] {
            let theirs = |i: usize| &half_ref[&format!("{label}_row{i}")];
            let exact = |i: usize| f32_ref[&format!("logits_row{i}")].squeeze(0).unwrap();
            let noise = (0..prompts.len())
                .map(|i| max_diff(theirs(i), &exact(i)))
                .fold(0f32, f32::max);
            let m = load_dir(&fixture(arch), dtype);
            for (i, ids) in prompts.iter().enumerate() {
                let ours = logits(&m, ids).to_dtype(candle_core::DType::F32).unwrap();
                let to_them = max_diff(&ours, theirs(i));
                assert!(
                    to_them <= 2.0 * noise,
                    "{arch} {label} prompt {i}: {to_them} from transformers, whose own {label} is up to {noise} from f32"
                );
            }
        }
    }
}
