//! Every architecture equals Hugging Face transformers on tiny fixtures (recorded by
//! tools/parity/make_arch_fixtures.py): f32 logits within 1e-4 absolute at every position,
//! alone, in right- and left-padded batches, and step by step through the KV cache.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use candle_core::{Device, Tensor};
use engine::LoadedModel;
use engine::model::Step;
use test_support::fixture;
use test_support::models::{ARCHS, ROPES, load, max_diff};

struct Reference {
    prompts: Vec<Vec<u32>>,
    logits: Vec<Tensor>,
}

fn reference(name: &str) -> Reference {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(name).join("reference.json")).unwrap(),
    )
    .unwrap();
    let prompts: Vec<Vec<u32>> = serde_json::from_value(json["prompt_ids"].clone()).unwrap();
    let t =
        candle_core::safetensors::load(fixture(name).join("reference.safetensors"), &Device::Cpu)
            .unwrap();
    let logits = (0..prompts.len())
        .map(|i| t[&format!("logits_row{i}")].squeeze(0).unwrap())
        .collect();
    Reference { prompts, logits }
}

/// Logits `[T, V]` of the real positions of each row of a padded batch.
fn batch_logits(m: &LoadedModel, prompts: &[Vec<u32>], left: bool) -> Vec<Tensor> {
    let t = prompts.iter().map(Vec::len).max().unwrap();
    let mut step = Step {
        ids: vec![],
        positions: vec![],
        key_mask: vec![],
    };
    for p in prompts {
        let pad = t - p.len();
        let (ids, mask, pos): (Vec<u32>, Vec<u8>, Vec<u32>) = if left {
            (
                std::iter::repeat_n(0, pad)
                    .chain(p.iter().copied())
                    .collect(),
                std::iter::repeat_n(0, pad)
                    .chain(std::iter::repeat_n(1, p.len()))
                    .collect(),
                std::iter::repeat_n(0, pad)
                    .chain(0..p.len() as u32)
                    .collect(),
            )
        } else {
            (
                p.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, pad))
                    .collect(),
                std::iter::repeat_n(1, p.len())
                    .chain(std::iter::repeat_n(0, pad))
                    .collect(),
                (0..t as u32).collect(),
            )
        };
        step.ids.push(ids);
        step.key_mask.push(mask);
        step.positions.push(pos);
    }
    let logits = m.head(&m.hidden(&step, None).unwrap()).unwrap();
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let start = if left { t - p.len() } else { 0 };
            logits.get(i).unwrap().narrow(0, start, p.len()).unwrap()
        })
        .collect()
}

#[test]
fn logits_equal_transformers_alone_and_in_padded_batches() {
    logits_equal_transformers(ARCHS);
}

#[test]
fn every_rope_scaling_equals_transformers() {
    logits_equal_transformers(ROPES);
}

fn logits_equal_transformers(names: &[&str]) {
    for name in names {
        let m = load(name);
        let r = reference(name);
        let mut worst = 0f32;
        for (i, p) in r.prompts.iter().enumerate() {
            let alone = batch_logits(&m, std::slice::from_ref(p), false).remove(0);
            let d = max_diff(&alone, &r.logits[i]);
            assert!(d < 1e-4, "{name} prompt {i} alone: max |Δ| {d}");
            worst = worst.max(d);
        }
        for left in [false, true] {
            for (i, got) in batch_logits(&m, &r.prompts, left).iter().enumerate() {
                let d = max_diff(got, &r.logits[i]);
                assert!(
                    d < 1e-4,
                    "{name} prompt {i} in a {} batch: max |Δ| {d}",
                    if left { "left-padded" } else { "right-padded" }
                );
                worst = worst.max(d);
            }
        }
        eprintln!("{name}: largest |Δ logit| to transformers {worst:e}");
    }
}

#[test]
fn the_kv_cache_gives_the_same_logits_as_one_pass() {
    for name in ARCHS {
        let m = load(name);
        let r = reference(name);
        let p = &r.prompts[0];
        let mut cache = m.cache();
        let mut parts = vec![];
        for (start, end) in [(0, 10), (10, 11), (11, p.len())] {
            let step = Step {
                ids: vec![p[start..end].to_vec()],
                positions: vec![(start as u32..end as u32).collect()],
                key_mask: vec![vec![1; end]],
            };
            parts.push(
                m.head(&m.hidden(&step, Some(&mut cache)).unwrap())
                    .unwrap()
                    .squeeze(0)
                    .unwrap(),
            );
        }
        let got = Tensor::cat(&parts, 0).unwrap();
        let d = max_diff(&got, &r.logits[0]);
        assert!(d < 1e-4, "{name}: cached logits differ by {d}");
    }
}
