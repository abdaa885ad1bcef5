//! A model loaded for inference: the network, its tokenizer, special tokens, an optional
//! classification head, and the tensors it was built from (for adapter merges).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;
use types::Dtype;

use super::config::{ConfigFile, ModelConfig};
use super::error::{EngineError, Result};
use super::files::ModelFiles;
use super::gpt2::Gpt2;
use super::gptj::GptJ;
use super::layers::{KvCache, PackedWeights, attention_mask};
use super::llama::Llama;
use super::weights::{TensorMap, recording_builder};

pub use super::weights::check_weights;

/// The network of a loaded model.
#[derive(Debug, Clone)]
pub enum Network {
    /// GPT-2 family.
    Gpt2(Gpt2),
    /// GPT-J.
    GptJ(GptJ),
    /// Llama, Mistral, Mixtral.
    Llama(Llama),
}

impl Network {
    fn build(config: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Network> {
        Ok(match config {
            ModelConfig::Gpt2(c) => Network::Gpt2(Gpt2::load(vb, c)?),
            ModelConfig::GptJ(c) => Network::GptJ(GptJ::load(vb, c)?),
            ModelConfig::Llama(c, _) => Network::Llama(Llama::load(vb, c)?),
        })
    }

    fn n_layers(&self) -> usize {
        match self {
            Network::Gpt2(m) => m.n_layers(),
            Network::GptJ(m) => m.n_layers(),
            Network::Llama(m) => m.n_layers(),
        }
    }

    fn window(&self) -> Option<usize> {
        match self {
            Network::Llama(m) => m.window,
            _ => None,
        }
    }
}

/// One forward step: token ids `[B][T]` with their position ids, and for every row the mask
/// of all keys so far (cached positions first): 0 for padding, otherwise the segment of the
/// token. A token attends only to earlier tokens of its own segment, so one row can hold
/// several texts (packing, segments 1, 2, …); an unpacked row marks every real token 1.
#[derive(Debug, Clone)]
pub struct Step {
    /// Token ids, all rows of equal length.
    pub ids: Vec<Vec<u32>>,
    /// Position ids, same shape as `ids`.
    pub positions: Vec<Vec<u32>>,
    /// Key mask (segments) per row, `past + T` long.
    pub key_mask: Vec<Vec<u8>>,
}

/// A model ready to score, generate or classify.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The network.
    pub network: Network,
    /// `score.weight` `[labels, hidden]` of a sequence-classification head, if loaded.
    pub classifier: Option<Tensor>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Start token prepended for perplexity.
    pub bos_id: u32,
    /// End-of-sequence tokens.
    pub eos_ids: Vec<u32>,
    /// Padding token (for sequence classification semantics).
    pub pad_id: Option<u32>,
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
    /// The parsed config.
    pub config: ModelConfig,
    /// The tensors the network was built from, but for those held packed in `packed`.
    pub base: Arc<TensorMap>,
    /// The base model's linear weights held packed (CPU, f32), shared with merged models.
    pub packed: PackedWeights,
    /// Name of the merged adapter, if any.
    pub adapter: Option<String>,
}

/// The token a text's perplexity is conditioned on, as lm-evaluation-harness's
/// `loglikelihood_rolling` and `evaluate`'s perplexity take it from the tokenizer: its BOS
/// (`tokenizer_config.json`'s `bos_token`, e.g. Llama 3's `<|begin_of_text|>`, Gemma's `<bos>`),
/// or its EOS where the tokenizer declares no BOS (Qwen). `None` without a tokenizer_config.json
/// or when the token is not in the vocabulary (config.json's `bos_token_id` decides then).
fn start_token(dir: &Path, tokenizer: &Tokenizer) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let token = |key: &str| -> Option<Option<String>> {
        match config.get(key)? {
            serde_json::Value::String(s) => Some(Some(s.clone())),
            serde_json::Value::Object(o) => Some(o.get("content")?.as_str().map(str::to_string)),
            serde_json::Value::Null => Some(None),
            _ => None,
        }
    };
    let name = match token("bos_token") {
        Some(Some(bos)) => bos,
        Some(None) => token("eos_token")??,
        None => return None,
    };
    tokenizer.token_to_id(&name)
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
        let ConfigFile {
            model: config,
            tokens,
            random_weights,
            ..
        } = ModelConfig::load(&files.config)?;
        let tokenizer = load_tokenizer(files, config.vocab_size())?;
        let bos_id = start_token(&files.dir, &tokenizer)
            .or_else(|| tokens.bos())
            .or_else(|| tokenizer.token_to_id("<|endoftext|>"))
            .or_else(|| tokenizer.token_to_id("<s>"))
            .ok_or_else(|| EngineError::Config {
                path: files.config.clone(),
                message: "no `bos_token_id` and the tokenizer has no <|endoftext|> or <s>".into(),
            })?;
        let dt = candle_dtype(dtype);
        let (vb, seen) = recording_builder(files, dt, device)?;
        let (network, packed) =
            PackedWeights::build(PackedWeights::default(), Some(seen.clone()), || {
                Network::build(&config, vb)
            });
        let network = network.map_err(|e| EngineError::Weights {
            dir: files.dir.clone(),
            message: e.to_string(),
        })?;
        let base = std::mem::take(
            &mut *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Ok(LoadedModel {
            network,
            classifier: None,
            tokenizer,
            bos_id,
            eos_ids: if tokens.eos().is_empty() {
                vec![bos_id]
            } else {
                tokens.eos()
            },
            pad_id: tokens.pad(),
            max_positions: config.max_positions(),
            device: device.clone(),
            dtype: dt,
            random_weights,
            arch: config.arch(),
            dir: files.dir.clone(),
            config,
            base: Arc::new(base),
            packed,
            adapter: None,
        })
    }

    /// The base model's tensor `name` as the checkpoint holds it, in the model's dtype.
    pub fn base_tensor(&self, name: &str) -> Result<Option<Tensor>> {
        if let Some(t) = self.base.get(name) {
            return Ok(Some(t.clone()));
        }
        // Packed weights unpack in f32; their values are the model dtype's.
        Ok(self
            .packed
            .tensor(name)?
            .map(|t| t.to_dtype(self.dtype))
            .transpose()?)
    }

    /// The same model with some tensors replaced (and `score.weight` as classification head),
    /// built from the tensors in memory; packed weights not replaced are shared.
    pub fn with_tensors(&self, replaced: TensorMap, adapter: &str) -> Result<LoadedModel> {
        let mut map: TensorMap = (*self.base).clone();
        let classifier = replaced.get("score.weight").cloned();
        let reuse = self.packed.without(replaced.keys());
        map.extend(replaced);
        let vb = VarBuilder::from_tensors(map, self.dtype, &self.device);
        // The new network's own packed weights stay in it: merges start from the base.
        let (network, _) = PackedWeights::build(reuse, None, || Network::build(&self.config, vb));
        let network = network.map_err(|e| EngineError::Weights {
            dir: self.dir.clone(),
            message: e.to_string(),
        })?;
        Ok(LoadedModel {
            network,
            classifier,
            adapter: Some(adapter.to_string()),
            ..self.clone()
        })
    }

    /// An empty KV cache for this model.
    pub fn cache(&self) -> KvCache {
        KvCache::new(self.network.n_layers())
    }

    /// An empty KV cache with room for `positions` positions.
    pub fn cache_for(&self, positions: usize) -> KvCache {
        KvCache::with_capacity(self.network.n_layers(), positions)
    }

    /// Final hidden states `[B, T, C]` of a step, extending `cache` when given.
    pub fn hidden(&self, step: &Step, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let t = step.ids.first().map_or(0, Vec::len);
        let past = cache.as_ref().map_or(0, |c| c.len());
        let mask = attention_mask(&step.key_mask, past, t, self.window(), &self.device)?;
        self.hidden_masked(&step.ids, &step.positions, &mask, cache)
    }

    /// Final hidden states `[B, T, C]` of token ids and position ids `[B][T]` under an
    /// attention mask `[B, 1, T, past + T]` (u8, 1 where a query sees a key), extending
    /// `cache` when given.
    pub fn hidden_masked(
        &self,
        ids: &[Vec<u32>],
        positions: &[Vec<u32>],
        mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let b = ids.len();
        let t = ids.first().map_or(0, Vec::len);
        let ids = Tensor::from_vec(ids.concat(), (b, t), &self.device)?;
        Ok(match &self.network {
            Network::Gpt2(m) => m.hidden(&ids, positions, mask, cache)?,
            Network::GptJ(m) => m.hidden(&ids, positions, mask, cache)?,
            Network::Llama(m) => m.hidden(&ids, positions, mask, cache)?,
        })
    }

    /// The sliding attention window, if the architecture has one.
    pub fn window(&self) -> Option<usize> {
        self.network.window()
    }

    /// Logits `[..., V]` (in f32) of hidden states `[..., C]`.
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        Ok(match &self.network {
            Network::Gpt2(m) => m.head(h)?,
            Network::GptJ(m) => m.head(h)?,
            Network::Llama(m) => m.head(h)?,
        }
        .to_dtype(DType::F32)?)
    }

    /// Token ids of a text, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of a text with the tokenizer's special tokens (its default, as for
    /// classification inputs).
    pub fn encode_special(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EngineError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of token ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| EngineError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                message: e.to_string(),
            })
    }
}
