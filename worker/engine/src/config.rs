//! Reading config.json as written by transformers 4.x and 5.x.

use std::path::Path;

use serde::Deserialize;

use super::error::{EngineError, Result};
use super::rope::{self, RopeError, RopeSpec};

/// `model_type`s the engine implements.
pub const SUPPORTED: &[&str] = &[
    "gpt2",
    "gptj",
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "gemma2",
    "gemma3_text",
];

/// The `model_type`s of the Llama family ([`LlamaConfig`]): all of [`SUPPORTED`] after GPT-2
/// and GPT-J.
const LLAMA_FAMILY: &[&str] = SUPPORTED.split_at(2).1;

fn default_activation() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

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
}

/// GPT-J hyper-parameters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct GptJConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub n_positions: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Dimensions per head that get rotary embeddings (all when absent).
    pub rotary_dim: Option<usize>,
    /// Feed-forward size (4 × hidden when absent).
    pub n_inner: Option<usize>,
    /// Activation.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
}

/// Hyper-parameters of the Llama family: Llama 1–3, Mistral (and Mistral-Nemo's `head_dim`),
/// Mixtral, Qwen2/2.5, Qwen3, Gemma 2 and Gemma 3 (text), as transformers 4.x and 5.x write
/// them; [`LlamaConfig::model_type`] tells them apart.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Feed-forward size (per expert for Mixtral).
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); all heads when absent.
    pub num_key_value_heads: Option<usize>,
    /// Per-head size (hidden / heads when absent or null).
    pub head_dim: Option<usize>,
    /// RMS-norm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Context length.
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    /// Rotary base (transformers 4.x).
    pub rope_theta: Option<f64>,
    /// Rotary scaling (transformers 4.x).
    pub rope_scaling: Option<serde_json::Value>,
    /// Rotary base and scaling (transformers 5.x).
    pub rope_parameters: Option<serde_json::Value>,
    /// Biases on q/k/v/o projections.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// `silu` (the only activation Llama-family checkpoints use).
    #[serde(default = "default_silu")]
    pub hidden_act: String,
    /// Sliding attention window (Mistral).
    pub sliding_window: Option<usize>,
    /// Experts per layer (Mixtral).
    pub num_local_experts: Option<usize>,
    /// Experts per token (Mixtral).
    pub num_experts_per_tok: Option<usize>,
    /// `model_type`, as config.json names it.
    #[serde(default)]
    pub model_type: String,
    /// Per-layer attention kinds, `full_attention` or `sliding_attention` (transformers 5.x).
    pub layer_types: Option<Vec<String>>,
    /// Qwen2: sliding windows on layers from `max_window_layers` on.
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Qwen2: the first layer with a sliding window.
    pub max_window_layers: Option<usize>,
    /// Gemma 3 (transformers 4.x): every n-th layer is global.
    pub sliding_window_pattern: Option<usize>,
    /// Gemma: attention scores are scaled by `query_pre_attn_scalar^-1/2`.
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: attention scores soft-capped to ±this.
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2: logits soft-capped to ±this.
    pub final_logit_softcapping: Option<f64>,
    /// Gemma's name for the activation.
    pub hidden_activation: Option<String>,
    /// Gemma 3 (transformers 4.x): rotary base of the sliding-window layers.
    pub rope_local_base_freq: Option<f64>,
}

fn default_positions() -> usize {
    2048
}
fn default_silu() -> String {
    "silu".into()
}

impl LlamaConfig {
    /// Per-head size.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Gemma 2 or Gemma 3: (1 + w) norms, scaled embeddings, norms before and after each block.
    pub fn gemma(&self) -> bool {
        matches!(self.model_type.as_str(), "gemma2" | "gemma3_text")
    }

    /// Biases on the q, k and v projections (always on Qwen2).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == "qwen2"
    }

    /// RMS norms over each head's queries and keys before the rotary embedding.
    pub fn qk_norm(&self) -> bool {
        matches!(self.model_type.as_str(), "qwen3" | "gemma3_text")
    }

    /// The MLP's activation.
    pub fn activation(&self) -> &str {
        match &self.hidden_activation {
            Some(a) if self.gemma() => a,
            None if self.gemma() => "gelu_pytorch_tanh",
            _ => &self.hidden_act,
        }
    }

    /// Scale of the attention scores.
    pub fn attention_scale(&self) -> f64 {
        match self.query_pre_attn_scalar {
            Some(s) => s.powf(-0.5),
            None => 1.0 / (self.head_dim() as f64).sqrt(),
        }
    }

    /// Whether layer `i` attends through a sliding window.
    pub fn sliding(&self, i: usize) -> bool {
        if self.sliding_window.is_none() {
            return false;
        }
        if let Some(types) = &self.layer_types {
            return types.get(i).is_some_and(|t| t == "sliding_attention");
        }
        match self.model_type.as_str() {
            "gemma2" => i.is_multiple_of(2),
            "gemma3_text" => !(i + 1).is_multiple_of(self.sliding_window_pattern.unwrap_or(6)),
            "qwen2" | "qwen3" => {
                self.use_sliding_window && i >= self.max_window_layers.unwrap_or(0)
            }
            _ => true,
        }
    }

    /// Rotary base of transformers 4.x's `rope_theta`, or 5.x's `rope_parameters`.
    fn theta(&self, params: Option<&serde_json::Value>) -> f64 {
        self.rope_theta
            .or_else(|| params?.get("rope_theta")?.as_f64())
            .unwrap_or(10000.0)
    }

    /// The rotary embedding of layer `i`; errs with the unsupported feature's name.
    pub fn rope(&self, i: usize) -> std::result::Result<RopeSpec, RopeError> {
        let sliding = self.sliding(i);
        let kind = if sliding {
            "sliding_attention"
        } else {
            "full_attention"
        };
        let v5 = self.rope_parameters.as_ref().filter(|v| !v.is_null());
        // Gemma 3 in transformers 5.x: one object per layer kind.
        if let Some(params) = v5.and_then(|p| p.get(kind)) {
            return RopeSpec::parse(
                Some(params),
                self.theta(Some(params)),
                self.max_position_embeddings,
            );
        }
        if sliding && let Some(local) = self.rope_local_base_freq {
            return Ok(RopeSpec::plain(local));
        }
        let params = v5.or(self.rope_scaling.as_ref());
        RopeSpec::parse(params, self.theta(v5), self.max_position_embeddings)
    }
}

/// A parsed config.json.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// GPT-2 family.
    Gpt2(Gpt2Config),
    /// GPT-J.
    GptJ(GptJConfig),
    /// The Llama family (Llama, Mistral, Mixtral, Qwen2/3, Gemma 2/3).
    Llama(Box<LlamaConfig>, &'static str),
}

/// Token ids and labels of config.json that the engine uses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SpecialTokens {
    /// Start token(s).
    pub bos_token_id: Option<serde_json::Value>,
    /// End token(s).
    pub eos_token_id: Option<serde_json::Value>,
    /// Padding token.
    pub pad_token_id: Option<serde_json::Value>,
}

fn ids(v: &Option<serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| x as u32).into_iter().collect(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect(),
        _ => vec![],
    }
}

impl SpecialTokens {
    /// Start token.
    pub fn bos(&self) -> Option<u32> {
        ids(&self.bos_token_id).first().copied()
    }
    /// End tokens (a config may list several).
    pub fn eos(&self) -> Vec<u32> {
        ids(&self.eos_token_id)
    }
    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        ids(&self.pad_token_id).first().copied()
    }
}

/// Marker key the engine writes into config.json of random-weight models.
pub const RANDOM_WEIGHTS_KEY: &str = "nlebench_random_weights";

/// Everything read from config.json.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The architecture and its hyper-parameters.
    pub model: ModelConfig,
    /// Special token ids.
    pub tokens: SpecialTokens,
    /// Marked as random weights by the engine.
    pub random_weights: bool,
    /// Number of classification labels (`id2label`), for sequence classification.
    pub num_labels: Option<usize>,
}

impl ModelConfig {
    /// Read config.json.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let err = |message: String| EngineError::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let random_weights = value
            .get(RANDOM_WEIGHTS_KEY)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let model_type = value
            .get("model_type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| err("no `model_type`".into()))?;
        let parse = |what: &str| format!("not a valid {what} config");
        let model = match model_type {
            "gpt2" => ModelConfig::Gpt2(
                serde_json::from_value(value.clone())
                    .map_err(|e| err(format!("{}: {e}", parse("GPT-2"))))?,
            ),
            "gptj" => ModelConfig::GptJ(
                serde_json::from_value(value.clone())
                    .map_err(|e| err(format!("{}: {e}", parse("GPT-J"))))?,
            ),
            t if LLAMA_FAMILY.contains(&t) => {
                let c: LlamaConfig = serde_json::from_value(value.clone())
                    .map_err(|e| err(format!("{}: {e}", parse(t))))?;
                let kind = LLAMA_FAMILY
                    .iter()
                    .copied()
                    .find(|k| *k == t)
                    .unwrap_or("llama");
                let unsupported = |feature: String, supported: &str| EngineError::Unsupported {
                    path: path.to_path_buf(),
                    feature,
                    supported: supported.into(),
                };
                for i in 0..c.num_hidden_layers {
                    c.rope(i).map_err(|e| match e {
                        RopeError::Unsupported(feature) => unsupported(feature, rope::SUPPORTED),
                        RopeError::Missing(message) => err(message),
                    })?;
                }
                let activation = if c.gemma() {
                    "gelu_pytorch_tanh"
                } else {
                    "silu"
                };
                if c.activation() != activation {
                    return Err(unsupported(
                        format!("activation `{}` for {t}", c.activation()),
                        &format!("{activation} for {t}"),
                    ));
                }
                if !c.num_attention_heads.is_multiple_of(c.kv_heads()) {
                    return Err(err(
                        "num_attention_heads is not a multiple of num_key_value_heads".into(),
                    ));
                }
                if t == "mixtral" && c.num_local_experts.is_none() {
                    return Err(err("a Mixtral config needs `num_local_experts`".into()));
                }
                ModelConfig::Llama(Box::new(c), kind)
            }
            other => {
                return Err(EngineError::UnknownModelType {
                    path: path.to_path_buf(),
                    model_type: other.to_string(),
                    supported: SUPPORTED.join(", "),
                });
            }
        };
        let (heads, width) = match &model {
            ModelConfig::Gpt2(c) => (c.n_head, c.n_embd),
            ModelConfig::GptJ(c) => (c.n_head, c.n_embd),
            ModelConfig::Llama(c, _) => {
                (c.num_attention_heads, c.num_attention_heads * c.head_dim())
            }
        };
        if heads == 0 || width % heads != 0 {
            return Err(err(format!(
                "the hidden size {width} is not divisible by {heads} heads"
            )));
        }
        let tokens: SpecialTokens = serde_json::from_value(value.clone()).unwrap_or_default();
        Ok(ConfigFile {
            num_labels: value
                .get("id2label")
                .and_then(serde_json::Value::as_object)
                .map(|m| m.len())
                .or_else(|| value.get("num_labels")?.as_u64().map(|n| n as usize)),
            model,
            tokens,
            random_weights,
        })
    }

    /// `model_type` as in config.json.
    pub fn arch(&self) -> &'static str {
        match self {
            ModelConfig::Gpt2(_) => "gpt2",
            ModelConfig::GptJ(_) => "gptj",
            ModelConfig::Llama(_, kind) => kind,
        }
    }

    /// Vocabulary size of the embedding.
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.vocab_size,
            ModelConfig::GptJ(c) => c.vocab_size,
            ModelConfig::Llama(c, _) => c.vocab_size,
        }
    }

    /// Context length in tokens.
    pub fn max_positions(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_positions,
            ModelConfig::GptJ(c) => c.n_positions,
            ModelConfig::Llama(c, _) => c.max_position_embeddings,
        }
    }

    /// Attention heads.
    pub fn heads(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_head,
            ModelConfig::GptJ(c) => c.n_head,
            ModelConfig::Llama(c, _) => c.num_attention_heads,
        }
    }

    /// Values the KV cache keeps per token: keys and values of every layer.
    pub fn kv_per_token(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => 2 * c.n_layer * c.n_embd,
            ModelConfig::GptJ(c) => 2 * c.n_layer * c.n_embd,
            ModelConfig::Llama(c, _) => 2 * c.num_hidden_layers * c.kv_heads() * c.head_dim(),
        }
    }

    /// Hidden size (input of a classification head).
    pub fn hidden_size(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_embd,
            ModelConfig::GptJ(c) => c.n_embd,
            ModelConfig::Llama(c, _) => c.hidden_size,
        }
    }
}
