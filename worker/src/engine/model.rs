//! A model loaded for inference: weights, tokenizer and what the engine needs to know.

use std::path::PathBuf;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use orchestrator::spec::Dtype;
use tokenizers::Tokenizer;

use super::config::ModelConfig;
use super::error::{EngineError, Result};
use super::files::ModelFiles;
use super::gpt2::Gpt2;

/// The network of a loaded model.
#[derive(Debug, Clone)]
pub enum Network {
    /// GPT-2 family.
    Gpt2(Gpt2),
}

/// A model ready to score text.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The network.
    pub network: Network,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Start token prepended for perplexity.
    pub bos_id: u32,
    /// Context length.
    pub max_positions: usize,
    /// Where it runs.
    pub device: Device,
    /// Weight dtype.
    pub dtype: DType,
    /// The weights are random.
    pub random_weights: bool,
    /// Architecture name.
    pub arch: &'static str,
    /// The model directory.
    pub dir: PathBuf,
}

/// candle dtype of a spec dtype.
pub fn candle_dtype(d: Dtype) -> DType {
    match d {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::Bf16 => DType::BF16,
    }
}

/// Read the tokenizer and check that every id it can produce has an embedding.
pub fn load_tokenizer(files: &ModelFiles, model_vocab: usize) -> Result<Tokenizer> {
    let tokenizer = Tokenizer::from_file(&files.tokenizer).map_err(|e| EngineError::Tokenizer {
        path: files.tokenizer.clone(),
        message: e.to_string(),
    })?;
    let size = tokenizer.get_vocab_size(true);
    let max_id = tokenizer
        .get_vocab(true)
        .values()
        .copied()
        .max()
        .unwrap_or(0) as usize;
    if max_id >= model_vocab {
        return Err(EngineError::VocabMismatch {
            dir: files.dir.clone(),
            tokenizer: size,
            model: model_vocab,
            max_id,
        });
    }
    Ok(tokenizer)
}

impl LoadedModel {
    /// Load config, tokenizer and weights.
    pub fn load(files: &ModelFiles, dtype: Dtype, device: &Device) -> Result<LoadedModel> {
        let (config, random_weights) = ModelConfig::load(&files.config)?;
        let tokenizer = load_tokenizer(files, config.vocab_size())?;
        let bos_id = config
            .bos_token_id()
            .or_else(|| tokenizer.token_to_id("<|endoftext|>"))
            .or_else(|| tokenizer.token_to_id("<s>"))
            .ok_or_else(|| EngineError::Config {
                path: files.config.clone(),
                message: "no `bos_token_id` and the tokenizer has no <|endoftext|> or <s>".into(),
            })?;
        check_weights(files)?;
        // SAFETY: the weight files are memory-mapped read-only; they live in a model directory
        // or the Hugging Face cache and are not modified while the model is loaded.
        let st = unsafe { MmapedSafetensors::multi(&files.weights) }.map_err(|e| {
            EngineError::CorruptWeights {
                path: files.weights[0].clone(),
                message: e.to_string(),
            }
        })?;
        let dt = candle_dtype(dtype);
        let vb = VarBuilder::from_backend(Box::new(st), dt, device.clone());
        let weights_err = |e: candle_core::Error| EngineError::Weights {
            dir: files.dir.clone(),
            message: e.to_string(),
        };
        let network = match &config {
            ModelConfig::Gpt2(c) => Network::Gpt2(Gpt2::load(vb, c).map_err(weights_err)?),
        };
        Ok(LoadedModel {
            network,
            tokenizer,
            bos_id,
            max_positions: config.max_positions(),
            device: device.clone(),
            dtype: dt,
            random_weights,
            arch: config.arch(),
            dir: files.dir.clone(),
        })
    }

    /// Logits `[B, T, V]` for ids, positions and key mask (see [`Gpt2::forward`]).
    pub fn logits(
        &self,
        ids: &candle_core::Tensor,
        positions: &candle_core::Tensor,
        mask: &candle_core::Tensor,
    ) -> Result<candle_core::Tensor> {
        Ok(match &self.network {
            Network::Gpt2(m) => m.forward(ids, positions, mask)?,
        })
    }
}

/// Check every weight file's header and size (cheap: no tensor data is read).
pub fn check_weights(files: &ModelFiles) -> Result<()> {
    files.weights.iter().try_for_each(|w| check_safetensors(w))
}

/// Check a safetensors file's header and size before mapping it, so that a corrupt or
/// truncated file gives a clear error instead of a crash.
fn check_safetensors(path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let corrupt = |message: String| EngineError::CorruptWeights {
        path: path.to_path_buf(),
        message,
    };
    let mut f = std::fs::File::open(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = f
        .metadata()
        .map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| corrupt(format!("the file has only {len} bytes")))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > len.saturating_sub(8) || header_len > 100_000_000 {
        return Err(corrupt(format!(
            "the header claims {header_len} bytes but the file has {len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header)
        .map_err(|e| corrupt(format!("cannot read the header: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(format!("the header is not valid JSON: {e}")))?;
    let data_len = len - 8 - header_len;
    let end = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if end > data_len {
        return Err(corrupt(format!(
            "tensors need {end} bytes of data but the file holds {data_len} (truncated?)"
        )));
    }
    Ok(())
}
