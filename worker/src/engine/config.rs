//! Reading config.json as written by transformers 4.x and 5.x.

use std::path::Path;

use serde::Deserialize;

use super::error::{EngineError, Result};

/// Architectures the engine implements.
pub const SUPPORTED: &[&str] = &["gpt2"];

/// GPT-2 hyper-parameters (also NorGPT's Megatron-converted checkpoints).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Gpt2Config {
    /// Vocabulary size of the embedding.
    pub vocab_size: usize,
    /// Context length.
    pub n_positions: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Feed-forward size (4 × hidden when absent).
    pub n_inner: Option<usize>,
    /// `gelu_new`, `gelu_fast`, `gelu_pytorch_tanh`, `gelu`, `relu`, `silu`.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Divide attention scores by √head_dim.
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    /// Also divide by the layer number.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Start token.
    pub bos_token_id: Option<u32>,
    /// End token.
    pub eos_token_id: Option<u32>,
}

fn default_activation() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

/// A parsed config.json.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// GPT-2 family.
    Gpt2(Gpt2Config),
}

/// Marker key the engine writes into config.json of random-weight models.
pub const RANDOM_WEIGHTS_KEY: &str = "nlebench_random_weights";

impl ModelConfig {
    /// Read config.json; also says whether it marks a random-weight model.
    pub fn load(path: &Path) -> Result<(ModelConfig, bool)> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| EngineError::Config {
                path: path.to_path_buf(),
                message: format!("not valid JSON: {e}"),
            })?;
        let random = value
            .get(RANDOM_WEIGHTS_KEY)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let model_type = value
            .get("model_type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| EngineError::Config {
                path: path.to_path_buf(),
                message: "no `model_type`".into(),
            })?;
        let config = match model_type {
            "gpt2" => ModelConfig::Gpt2(serde_json::from_value(value.clone()).map_err(|e| {
                EngineError::Config {
                    path: path.to_path_buf(),
                    message: format!("not a GPT-2 config: {e}"),
                }
            })?),
            other => {
                return Err(EngineError::UnknownModelType {
                    path: path.to_path_buf(),
                    model_type: other.to_string(),
                    supported: SUPPORTED.join(", "),
                });
            }
        };
        if let ModelConfig::Gpt2(c) = &config
            && (c.n_head == 0 || c.n_embd % c.n_head != 0)
        {
            return Err(EngineError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "n_embd {} is not divisible by n_head {}",
                    c.n_embd, c.n_head
                ),
            });
        }
        Ok((config, random))
    }

    /// `model_type` as in config.json.
    pub fn arch(&self) -> &'static str {
        match self {
            ModelConfig::Gpt2(_) => "gpt2",
        }
    }

    /// Vocabulary size of the embedding.
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.vocab_size,
        }
    }

    /// Context length in tokens.
    pub fn max_positions(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_positions,
        }
    }

    /// Start token id from the config, if given.
    pub fn bos_token_id(&self) -> Option<u32> {
        match self {
            ModelConfig::Gpt2(c) => c.bos_token_id,
        }
    }
}
