//! PEFT LoRA adapters: read `adapter_config.json` + `adapter_model.safetensors` (or `.bin`)
//! and merge `W + scale·B·A` into the base weights held in memory (`fan_in_fan_out` for
//! GPT-2's Conv1D, `target_modules`, `modules_to_save` such as a classification `score`), so
//! swapping adapters never rereads the base model. An adapter that matches no module, does not
//! fit its base, or does not change the output on a probe input is an error.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::Deserialize;

use super::error::{EngineError, Result};
use super::model::{LoadedModel, Step};
use super::weights::TensorMap;

/// `adapter_config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterConfig {
    /// Must be `LORA`.
    pub peft_type: String,
    /// Rank.
    pub r: usize,
    /// Scale numerator.
    pub lora_alpha: f64,
    /// Module names (list) or a regular expression (string).
    pub target_modules: Option<serde_json::Value>,
    /// The base layer stores its weight as [in, out] (GPT-2 Conv1D).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Modules saved whole with the adapter (e.g. `score`).
    pub modules_to_save: Option<Vec<String>>,
    /// `CAUSAL_LM`, `SEQ_CLS`, …
    pub task_type: Option<String>,
    /// Scale by alpha/√r instead of alpha/r.
    #[serde(default)]
    pub use_rslora: bool,
    /// Weight-decomposed LoRA (not supported).
    #[serde(default)]
    pub use_dora: bool,
    /// Per-module ranks.
    #[serde(default)]
    pub rank_pattern: HashMap<String, usize>,
    /// Per-module alphas.
    #[serde(default)]
    pub alpha_pattern: HashMap<String, f64>,
    /// The base model it was trained on.
    pub base_model_name_or_path: Option<String>,
}

/// An adapter read from disk.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Its directory.
    pub dir: PathBuf,
    /// Its config.
    pub config: AdapterConfig,
    /// Its tensors, names without the `base_model.model.` prefix.
    pub tensors: TensorMap,
}

fn adapter_err(dir: &Path, message: String, fix: &str) -> EngineError {
    EngineError::Adapter {
        dir: dir.to_path_buf(),
        message,
        fix: fix.to_string(),
    }
}

impl Adapter {
    /// Read an adapter directory.
    pub fn load(dir: &Path) -> Result<Adapter> {
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|_| EngineError::MissingFile {
            dir: dir.to_path_buf(),
            file: "adapter_config.json".into(),
            fix: "point the adapter source at a PEFT adapter directory".into(),
        })?;
        let config: AdapterConfig = serde_json::from_str(&text).map_err(|e| {
            adapter_err(
                dir,
                format!("adapter_config.json: {e}"),
                "repair adapter_config.json",
            )
        })?;
        if config.peft_type != "LORA" {
            return Err(adapter_err(
                dir,
                format!("peft_type `{}` is not supported", config.peft_type),
                "use a LoRA adapter",
            ));
        }
        if config.use_dora {
            return Err(adapter_err(
                dir,
                "DoRA adapters are not supported".into(),
                "use a plain LoRA adapter",
            ));
        }
        let st = dir.join("adapter_model.safetensors");
        let raw = if st.is_file() {
            candle_core::safetensors::load(&st, &Device::Cpu).map_err(|e| {
                EngineError::CorruptWeights {
                    path: st.clone(),
                    message: e.to_string(),
                }
            })?
        } else if dir.join("adapter_model.bin").is_file() {
            let bin = dir.join("adapter_model.bin");
            candle_core::pickle::read_all(&bin)
                .map_err(|e| EngineError::CorruptWeights {
                    path: bin.clone(),
                    message: e.to_string(),
                })?
                .into_iter()
                .collect()
        } else {
            return Err(EngineError::MissingFile {
                dir: dir.to_path_buf(),
                file: "adapter_model.safetensors".into(),
                fix: "the adapter directory needs adapter_model.safetensors or adapter_model.bin"
                    .into(),
            });
        };
        let tensors = raw
            .into_iter()
            .map(|(k, v)| {
                (
                    k.strip_prefix("base_model.model.")
                        .unwrap_or(&k)
                        .replace(".default.", "."),
                    v,
                )
            })
            .collect();
        Ok(Adapter {
            dir: dir.to_path_buf(),
            config,
            tensors,
        })
    }

    fn scale(&self, module: &str) -> f64 {
        fn pick<T: Copy>(m: &HashMap<String, T>, module: &str) -> Option<T> {
            m.iter()
                .find(|(k, _)| module == k.as_str() || module.ends_with(&format!(".{k}")))
                .map(|(_, v)| *v)
        }
        let r = pick(&self.config.rank_pattern, module).unwrap_or(self.config.r) as f64;
        let alpha = pick(&self.config.alpha_pattern, module).unwrap_or(self.config.lora_alpha);
        if self.config.use_rslora {
            alpha / r.sqrt()
        } else {
            alpha / r
        }
    }
}

/// The base model with `adapter` merged, built from the tensors already in memory.
pub fn merge(base: &LoadedModel, adapter: &Adapter, name: &str) -> Result<LoadedModel> {
    let dir = &adapter.dir;
    let mut replaced = TensorMap::new();
    let mut modules = BTreeSet::new();
    for key in adapter.tensors.keys() {
        if let Some(m) = key.strip_suffix(".lora_A.weight") {
            modules.insert(m.to_string());
        }
    }
    if modules.is_empty() {
        return Err(adapter_err(
            dir,
            "the adapter has no LoRA weights (lora_A/lora_B)".into(),
            "use a PEFT LoRA adapter",
        ));
    }
    for module in &modules {
        let weight_name = format!("{module}.weight");
        let w = base.base_tensor(&weight_name)?.ok_or_else(|| {
            adapter_err(
                dir,
                format!(
                    "the adapter targets `{module}`, which the base model ({}) does not have",
                    base.arch
                ),
                "use an adapter trained for this base model",
            )
        })?;
        let a = &adapter.tensors[&format!("{module}.lora_A.weight")];
        let b = adapter
            .tensors
            .get(&format!("{module}.lora_B.weight"))
            .ok_or_else(|| {
                adapter_err(
                    dir,
                    format!("`{module}` has lora_A but no lora_B"),
                    "repair the adapter file",
                )
            })?;
        let delta =
            (b.to_dtype(DType::F32)?.matmul(&a.to_dtype(DType::F32)?)? * adapter.scale(module))?;
        let delta = if adapter.config.fan_in_fan_out {
            delta.t()?.contiguous()?
        } else {
            delta
        };
        if delta.dims() != w.dims() {
            return Err(adapter_err(
                dir,
                format!(
                    "`{module}` has weight shape {:?} in the base model but the adapter's update has shape {:?}{}",
                    w.dims(),
                    delta.dims(),
                    if delta.t().is_ok_and(|d| d.dims() == w.dims()) {
                        " (fan_in_fan_out set wrongly?)"
                    } else {
                        ""
                    }
                ),
                "use an adapter trained for this base model",
            ));
        }
        let merged = (w.to_dtype(DType::F32)? + delta)?
            .to_dtype(base.dtype)?
            .to_device(&base.device)?;
        replaced.insert(weight_name, merged);
    }
    for (key, t) in &adapter.tensors {
        if key.contains(".lora_") {
            continue;
        }
        let name = key.replace(".modules_to_save.", ".");
        if let Some(old) = base.base_tensor(&name)?
            && old.dims() != t.dims()
        {
            return Err(adapter_err(
                dir,
                format!(
                    "saved module `{name}` has shape {:?}, the base has {:?}",
                    t.dims(),
                    old.dims()
                ),
                "use an adapter trained for this base model",
            ));
        }
        replaced.insert(name, t.to_dtype(base.dtype)?.to_device(&base.device)?);
    }
    if adapter.config.task_type.as_deref() == Some("SEQ_CLS")
        && !replaced.contains_key("score.weight")
    {
        return Err(adapter_err(
            dir,
            "a SEQ_CLS adapter without a `score` head".into(),
            "save the adapter with modules_to_save = [\"score\"]",
        ));
    }
    let merged = base.with_tensors(replaced, name)?;
    check_changes_output(base, &merged, dir)?;
    Ok(merged)
}

/// Fail when the merged model's hidden states equal the base model's on a probe input.
fn check_changes_output(base: &LoadedModel, merged: &LoadedModel, dir: &Path) -> Result<()> {
    let ids: Vec<u32> = (1..9u32)
        .map(|i| i % base.config.vocab_size() as u32)
        .collect();
    let step = Step {
        positions: vec![(0..ids.len() as u32).collect()],
        key_mask: vec![vec![1; ids.len()]],
        ids: vec![ids],
    };
    let d = (base.hidden(&step, None)? - merged.hidden(&step, None)?)?
        .abs()?
        .max_all()?
        .to_dtype(DType::F32)?
        .to_scalar::<f32>()?;
    if d == 0.0 && merged.classifier.is_none() {
        return Err(adapter_err(
            dir,
            "merging the adapter did not change the model's output on a probe input".into(),
            "check the adapter: its lora_B matrices may be all zeros (untrained)",
        ));
    }
    Ok(())
}
