//! BERT with a sequence-classification head (`BertForSequenceClassification`, the layout of
//! `NorGLM/Entailment`): embeddings, a bidirectional encoder with a padding mask, the tanh
//! pooler over `[CLS]` and the linear classifier.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use super::error::{EngineError, Result};
use super::files::ModelFiles;
use super::gpt2::Activation;
use super::layers::attend;
use super::weights::recording_builder;

/// The keys of a BERT config.json the classifier needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward size.
    pub intermediate_size: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Token type vocabulary.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Layer norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// Activation name.
    #[serde(default = "gelu")]
    pub hidden_act: String,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Label names by index.
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    /// Only `absolute` is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// `multi_label_classification` for classifiers scoring each label on its own.
    #[serde(default)]
    pub problem_type: Option<String>,
}

fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}

#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// The network: embeddings, encoder layers, pooler and classifier.
#[derive(Debug, Clone)]
struct Network {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    pooler: Linear,
    classifier: Linear,
    heads: usize,
    act: Activation,
    pad_id: u32,
    device: Device,
}

/// A loaded BERT sequence classifier with its tokenizer.
#[derive(Debug, Clone)]
pub struct BertClassifier {
    net: Network,
    /// Label names by index (`id2label`), `LABEL_i` where the config has none.
    pub labels: Vec<String>,
    /// The tokenizer, truncating to the context length.
    pub tokenizer: Tokenizer,
    /// Context length in tokens.
    pub max_positions: usize,
    /// Each label is scored on its own (a sigmoid per label), as multi-label toxicity
    /// classifiers; otherwise the labels share a softmax.
    pub multi_label: bool,
}

impl BertClassifier {
    /// Load a `BertForSequenceClassification` model directory in f32.
    pub fn load(files: &ModelFiles, device: &Device) -> Result<BertClassifier> {
        let cfg_err = |message: String| EngineError::Config {
            path: files.config.clone(),
            message,
        };
        let text = std::fs::read_to_string(&files.config).map_err(|source| EngineError::Io {
            path: files.config.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| cfg_err(format!("not valid JSON: {e}")))?;
        let model_type = value.get("model_type").and_then(|v| v.as_str());
        if model_type != Some("bert") {
            return Err(EngineError::UnknownModelType {
                path: files.config.clone(),
                model_type: model_type.unwrap_or("(none)").to_string(),
                supported: "bert (a sequence classifier such as NorGLM/Entailment or a toxicity classifier)".into(),
            });
        }
        let cfg: BertConfig = serde_json::from_value(value)
            .map_err(|e| cfg_err(format!("not a valid BERT config: {e}")))?;
        if cfg.position_embedding_type.as_deref().unwrap_or("absolute") != "absolute" {
            return Err(cfg_err(
                "only absolute position embeddings are supported".into(),
            ));
        }
        let act = Activation::parse(&cfg.hidden_act)
            .ok_or_else(|| cfg_err(format!("hidden_act `{}` is not supported", cfg.hidden_act)))?;
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(cfg_err(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let mut tokenizer =
            Tokenizer::from_file(&files.tokenizer).map_err(|e| EngineError::Tokenizer {
                path: files.tokenizer.clone(),
                message: e.to_string(),
            })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: cfg.max_position_embeddings,
                ..TruncationParams::default()
            }))
            .map_err(|e| EngineError::Tokenizer {
                path: files.tokenizer.clone(),
                message: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        let (vb, _) = recording_builder(files, DType::F32, device)?;
        let weights = |e: candle_core::Error| EngineError::Weights {
            dir: files.dir.clone(),
            message: e.to_string(),
        };
        let net = Network::build(&cfg, act, device, vb).map_err(weights)?;
        let labels = (0..net.classifier.weight().dim(0).map_err(weights)?)
            .map(|i| {
                cfg.id2label
                    .get(&i.to_string())
                    .cloned()
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect();
        Ok(BertClassifier {
            net,
            labels,
            tokenizer,
            max_positions: cfg.max_position_embeddings,
            multi_label: cfg.problem_type.as_deref() == Some("multi_label_classification"),
        })
    }

    /// Each label's probability for each text, as transformers' text-classification
    /// pipeline with `top_k=None` computes it: a sigmoid per label for multi-label models,
    /// else the softmax over the labels. Texts go through in batches of `batch`.
    pub fn probabilities(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f64>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            let rows = chunk
                .iter()
                .map(|t| self.encode(t))
                .collect::<Result<Vec<_>>>()?;
            let logits: Vec<Vec<f32>> = self
                .logits(&rows)
                .and_then(|l| l.to_dtype(candle_core::DType::F32)?.to_vec2())
                .map_err(EngineError::from)?;
            for row in logits {
                let row: Vec<f64> = row.into_iter().map(f64::from).collect();
                out.push(if self.multi_label {
                    row.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect()
                } else {
                    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exp: Vec<f64> = row.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = exp.iter().sum();
                    exp.into_iter().map(|e| e / sum).collect()
                });
            }
        }
        Ok(out)
    }

    /// Token ids of `text` with the special tokens, truncated to the context length.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EngineError::Tokenizer {
                path: "tokenizer.json".into(),
                message: e.to_string(),
            })
    }

    /// Classification logits `[B, labels]` of a batch of token-id rows (right-padded here,
    /// token type 0 everywhere, as for a single input text).
    pub fn logits(&self, rows: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        self.net.logits(rows)
    }
}

impl Network {
    fn build(
        cfg: &BertConfig,
        act: Activation,
        device: &Device,
        vb: VarBuilder,
    ) -> candle_core::Result<Network> {
        let h = cfg.hidden_size;
        let e = vb.pp("bert.embeddings");
        let norm = |vb: VarBuilder| layer_norm(h, cfg.layer_norm_eps, vb.pp("LayerNorm"));
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("bert.encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: linear(h, h, a.pp("self.query"))?,
                    key: linear(h, h, a.pp("self.key"))?,
                    value: linear(h, h, a.pp("self.value"))?,
                    attn_out: linear(h, h, a.pp("output.dense"))?,
                    attn_norm: norm(a.pp("output"))?,
                    intermediate: linear(h, cfg.intermediate_size, l.pp("intermediate.dense"))?,
                    output: linear(cfg.intermediate_size, h, l.pp("output.dense"))?,
                    out_norm: norm(l.pp("output"))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let n_labels = vb.pp("classifier").get_unchecked("weight")?.dim(0)?;
        Ok(Network {
            words: embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?,
            positions: embedding(cfg.max_position_embeddings, h, e.pp("position_embeddings"))?,
            token_types: embedding(cfg.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            embed_norm: norm(e)?,
            layers,
            pooler: linear(h, h, vb.pp("bert.pooler.dense"))?,
            classifier: linear(h, n_labels, vb.pp("classifier"))?,
            heads: cfg.num_attention_heads,
            act,
            pad_id: cfg.pad_token_id.unwrap_or(0),
            device: device.clone(),
        })
    }

    fn logits(&self, rows: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        let b = rows.len();
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for r in rows {
            ids.extend(
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad_id, t - r.len())),
            );
            mask.extend(
                std::iter::repeat_n(1u8, r.len()).chain(std::iter::repeat_n(0, t - r.len())),
            );
        }
        let ids = Tensor::from_vec(ids, (b, t), &self.device)?;
        let positions = Tensor::arange(0u32, t as u32, &self.device)?;
        let types = Tensor::zeros((b, t), DType::U32, &self.device)?;
        let x = self
            .words
            .forward(&ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .add(&self.token_types.forward(&types)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        let mask = Tensor::from_vec(mask, (b, 1, 1, t), &self.device)?;
        let d = x.dim(2)? / self.heads;
        let scale = 1.0 / (d as f64).sqrt();
        for l in &self.layers {
            let split = |y: Tensor| -> candle_core::Result<Tensor> {
                y.reshape((b, t, self.heads, d))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(l.query.forward(&x)?)?;
            let k = split(l.key.forward(&x)?)?;
            let v = split(l.value.forward(&x)?)?;
            let a = attend(&q, &k, &v, &mask, scale, None)?;
            x = l.attn_norm.forward(&(l.attn_out.forward(&a)? + &x)?)?;
            let f = l
                .output
                .forward(&self.act.apply(&l.intermediate.forward(&x)?)?)?;
            x = l.out_norm.forward(&(f + &x)?)?;
        }
        let cls = x.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        self.classifier.forward(&pooled)
    }
}
