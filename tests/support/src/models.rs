//! Fixture models and tensor comparison for the engine's parity tests.

use candle_core::{Device, Tensor};
use engine::LoadedModel;
use engine::files::in_dir;
use engine::model::Step;
use types::Dtype;

/// The fixture model in `dir`, in `dtype`, on the CPU.
pub fn load_dir(dir: &std::path::Path, dtype: Dtype) -> LoadedModel {
    LoadedModel::load(&in_dir(dir, None).unwrap(), dtype, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", dir.display()))
}

/// The fixture model `tests/fixtures/NAME` in f32.
pub fn load(name: &str) -> LoadedModel {
    load_dir(&crate::fixture(name), Dtype::F32)
}

/// Logits `[T, V]` of one unpadded row of token ids.
pub fn logits(m: &LoadedModel, ids: &[u32]) -> Tensor {
    let step = Step {
        ids: vec![ids.to_vec()],
        positions: vec![(0..ids.len() as u32).collect()],
        key_mask: vec![vec![1; ids.len()]],
    };
    m.head(&m.hidden(&step, None).unwrap())
        .unwrap()
        .squeeze(0)
        .unwrap()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Tensors of a fixture's `reference.safetensors`.
pub fn reference_tensors(name: &str) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(
        crate::fixture(name).join("reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

/// The tiny architecture fixtures (tools/parity/make_arch_fixtures.py), one per architecture
/// or shape: Llama 3's rope scaling, Qwen2, Qwen3, Mistral-Nemo's head size, Gemma 2 and 3.
pub const ARCHS: &[&str] = &[
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-mixtral",
    "tiny-gptj",
    "tiny-llama3",
    "tiny-qwen2",
    "tiny-qwen3",
    "tiny-nemo",
    "tiny-gemma2",
    "tiny-gemma3",
];

/// Tiny Llamas with transformers' other rope scalings: linear, dynamic NTK (beyond 12
/// positions) and YaRN.
pub const ROPES: &[&str] = &["tiny-llama-linear", "tiny-llama-dynamic", "tiny-llama-yarn"];
