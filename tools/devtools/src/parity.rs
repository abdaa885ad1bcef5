//! `nlebench-dev parity`: the engine on a device (CUDA) against the engine on the CPU, whose
//! f32 logits equal transformers' (worker/engine/tests/parity_arch.rs), for every fixture
//! architecture in f32, f16 and bf16: logits of each prompt alone and in a left-padded batch,
//! through the KV cache, and greedy tokens.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use candle_core::{DType, Device, Tensor};
use engine::files::in_dir;
use engine::model::Step;
use engine::{GenerationConfig, LoadedModel, generate};
use test_support::models::ARCHS;
use types::Dtype;

use crate::args::ParityArgs;

/// Greedy tokens compared per prompt.
const NEW_TOKENS: usize = 12;

/// The largest |Δ logit| to the CPU's f32 logits, relative to the largest |logit|, allowed per
/// dtype. f32 is held to transformers' own parity bound, 1e-4 absolute, instead (see
/// [`passes`]). The reduced precisions round every weight and activation: f16 keeps 11
/// significant bits (≈ 5e-4 relative per rounding), bf16 8 (≈ 4e-3), and the error of a few
/// layers adds up to about ten roundings.
pub fn tolerance(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::F32 => 1e-4,
        Dtype::F16 => 1e-2,
        Dtype::Bf16 => 5e-2,
    }
}

/// One architecture in one dtype on the device.
#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub arch: String,
    pub dtype: String,
    /// Largest |Δ logit| to the CPU f32 logits, over prompts alone, in a left-padded batch and
    /// through the KV cache.
    pub max_abs: f32,
    /// `max_abs` over the largest |logit|.
    pub max_rel: f32,
    /// The same for the engine in this dtype on the CPU.
    pub cpu_rel: f32,
    /// Largest |Δ logit| to transformers' recorded f32 logits.
    pub max_abs_transformers: f32,
    /// Greedy tokens equal to the CPU f32 ones, of all compared.
    pub greedy_equal: usize,
    pub greedy_total: usize,
    pub passed: bool,
}

/// Whether a check is within its tolerance: f32 within 1e-4 absolute of the CPU logits and of
/// transformers' with identical greedy tokens; f16/bf16 within [`tolerance`] relative, or
/// within twice the CPU's own error in that dtype where that is larger (rounded, a
/// mixture-of-experts router can pick another expert, on any device). Greedy tokens in
/// reduced precision are reported, not required: the fixtures' random logits are near ties.
pub fn passes(dtype: Dtype, max_abs: f32, max_rel: f32, cpu_rel: f32, greedy_equal: bool) -> bool {
    match dtype {
        Dtype::F32 => max_abs < tolerance(Dtype::F32) && greedy_equal,
        _ => max_rel <= tolerance(dtype).max(2.0 * cpu_rel),
    }
}

/// Logits `[T, V]` in f32 on the CPU of each prompt's real positions in one (left-padded when
/// several) batch.
fn logits(m: &LoadedModel, prompts: &[Vec<u32>]) -> anyhow::Result<Vec<Tensor>> {
    let t = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut step = Step {
        ids: vec![],
        positions: vec![],
        key_mask: vec![],
    };
    for p in prompts {
        let pad = t - p.len();
        step.ids.push(
            std::iter::repeat_n(0, pad)
                .chain(p.iter().copied())
                .collect(),
        );
        step.key_mask.push(
            std::iter::repeat_n(0u8, pad)
                .chain(std::iter::repeat_n(1, p.len()))
                .collect(),
        );
        step.positions.push(
            std::iter::repeat_n(0, pad)
                .chain(0..p.len() as u32)
                .collect(),
        );
    }
    let all = m
        .head(&m.hidden(&step, None)?)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(all.get(i)?.narrow(0, t - p.len(), p.len())?))
        .collect()
}

/// Logits `[T, V]` of `p` computed in three steps through the KV cache.
fn cached_logits(m: &LoadedModel, p: &[u32]) -> anyhow::Result<Tensor> {
    let mut cache = m.cache();
    let mut parts = vec![];
    let cuts = [0, p.len() / 2, p.len() / 2 + 1, p.len()];
    for w in cuts.windows(2) {
        let (start, end) = (w[0], w[1]);
        if start == end {
            continue;
        }
        let step = Step {
            ids: vec![p[start..end].to_vec()],
            positions: vec![(start as u32..end as u32).collect()],
            key_mask: vec![vec![1; end]],
        };
        parts.push(
            m.head(&m.hidden(&step, Some(&mut cache))?)?
                .squeeze(0)?
                .to_dtype(DType::F32)?
                .to_device(&Device::Cpu)?,
        );
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn max_abs(a: &Tensor, b: &Tensor) -> anyhow::Result<f32> {
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
}

/// The prompts and transformers' f32 logits recorded with a fixture.
fn reference(dir: &Path) -> anyhow::Result<(Vec<Vec<u32>>, Vec<Tensor>)> {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json"))
            .with_context(|| format!("cannot read {}/reference.json", dir.display()))?,
    )?;
    let prompts: Vec<Vec<u32>> = serde_json::from_value(json["prompt_ids"].clone())?;
    let t = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)?;
    let logits = (0..prompts.len())
        .map(|i| {
            t.get(&format!("logits_row{i}"))
                .ok_or_else(|| anyhow!("reference.safetensors has no logits_row{i}"))
                .and_then(|x| Ok(x.squeeze(0)?))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((prompts, logits))
}

fn greedy(m: &LoadedModel, prompts: &[Vec<u32>]) -> anyhow::Result<Vec<Vec<u32>>> {
    let cfg = GenerationConfig {
        max_new_tokens: Some(NEW_TOKENS),
        min_new_tokens: NEW_TOKENS,
        ..GenerationConfig::default()
    };
    Ok(generate(m, prompts, &cfg)?
        .into_iter()
        .map(|g| g.tokens)
        .collect())
}

/// Largest |Δ logit| of `m` to `want` (the CPU f32 logits) over every prompt alone, all of them
/// in one left-padded batch, and the first through the KV cache; and to transformers' `recorded`.
fn errors(
    m: &LoadedModel,
    prompts: &[Vec<u32>],
    want: &[Tensor],
    recorded: &[Tensor],
) -> anyhow::Result<(f32, f32)> {
    let (mut worst, mut worst_tf) = (0f32, 0f32);
    for (i, p) in prompts.iter().enumerate() {
        let alone = logits(m, std::slice::from_ref(p))?.remove(0);
        worst = worst.max(max_abs(&alone, &want[i])?);
        worst_tf = worst_tf.max(max_abs(&alone, &recorded[i])?);
    }
    for (i, got) in logits(m, prompts)?.iter().enumerate() {
        worst = worst.max(max_abs(got, &want[i])?);
    }
    worst = worst.max(max_abs(&cached_logits(m, &prompts[0])?, &want[0])?);
    Ok((worst, worst_tf))
}

/// Check one fixture on `device` in every dtype.
pub fn check_arch(dir: &Path, arch: &str, device: &Device) -> anyhow::Result<Vec<Check>> {
    let files = in_dir(dir, None)?;
    let (prompts, recorded) = reference(dir)?;
    let cpu = LoadedModel::load(&files, Dtype::F32, &Device::Cpu)?;
    let want: Vec<Tensor> = prompts
        .iter()
        .map(|p| logits(&cpu, std::slice::from_ref(p)).map(|mut v| v.remove(0)))
        .collect::<anyhow::Result<_>>()?;
    let mut largest = 0f32;
    for w in &want {
        largest = largest.max(w.abs()?.max_all()?.to_scalar::<f32>()?);
    }
    let largest = largest.max(f32::MIN_POSITIVE);
    let want_tokens = greedy(&cpu, &prompts)?;
    let mut checks = Vec::new();
    for dtype in [Dtype::F32, Dtype::F16, Dtype::Bf16] {
        let m = LoadedModel::load(&files, dtype, device)?;
        let (worst, worst_tf) = errors(&m, &prompts, &want, &recorded)?;
        // What the dtype itself costs on the CPU, the implementation every other is held to.
        let cpu_rel = if dtype == Dtype::F32 || device.is_cpu() {
            worst / largest
        } else {
            let on_cpu = LoadedModel::load(&files, dtype, &Device::Cpu)?;
            errors(&on_cpu, &prompts, &want, &recorded)?.0 / largest
        };
        let tokens = greedy(&m, &prompts)?;
        let total: usize = want_tokens.iter().map(Vec::len).sum();
        let equal: usize = tokens
            .iter()
            .zip(&want_tokens)
            .map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count())
            .sum();
        let rel = worst / largest;
        checks.push(Check {
            arch: arch.to_string(),
            dtype: dtype.as_str().to_string(),
            max_abs: worst,
            max_rel: rel,
            cpu_rel,
            max_abs_transformers: worst_tf,
            greedy_equal: equal,
            greedy_total: total,
            passed: passes(dtype, worst.max(worst_tf), rel, cpu_rel, equal == total),
        });
    }
    Ok(checks)
}

pub fn run(a: ParityArgs) -> anyhow::Result<ExitCode> {
    let device = engine::device::select(a.device)?;
    let mut checks = Vec::new();
    for arch in ARCHS {
        checks.extend(
            check_arch(&a.fixtures.join(arch), arch, &device)
                .with_context(|| format!("{arch} on {}", a.device))?,
        );
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    if let Some(path) = &a.json {
        let report = serde_json::json!({
            "device": engine::device::name(&device),
            "tolerance_rel": { "f16": tolerance(Dtype::F16), "bf16": tolerance(Dtype::Bf16) },
            "tolerance_abs_f32": tolerance(Dtype::F32),
            "checks": checks,
            "failed": failed,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "{:<13} {:<5} {:>10} {:>10} {:>10} {:>12} {:>8}  result",
        "arch", "dtype", "max|Δ|", "rel", "CPU rel", "vs transf.", "greedy"
    );
    for c in &checks {
        println!(
            "{:<13} {:<5} {:>10.2e} {:>10.2e} {:>10.2e} {:>12.2e} {:>4}/{:<3}  {}",
            c.arch,
            c.dtype,
            c.max_abs,
            c.max_rel,
            c.cpu_rel,
            c.max_abs_transformers,
            c.greedy_equal,
            c.greedy_total,
            if c.passed { "ok" } else { "FAILED" }
        );
    }
    println!(
        "parity on {}: {} checks, {failed} failed (f32 within {:e} absolute of CPU and \
         transformers; f16 within {:e} and bf16 within {:e} of the largest logit, or twice \
         the CPU's error in that dtype)",
        engine::device::name(&device),
        checks.len(),
        tolerance(Dtype::F32),
        tolerance(Dtype::F16),
        tolerance(Dtype::Bf16)
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
