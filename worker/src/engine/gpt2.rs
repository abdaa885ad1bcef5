//! GPT-2 (NorGPT) on candle-nn building blocks: logits at every position, a key-padding
//! mask and per-row position ids.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, layer_norm};

use super::config::Gpt2Config;

/// GPT-2's Conv1D: weight stored as [in, out], `y = x W + b`.
#[derive(Debug, Clone)]
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    fn load(vb: VarBuilder, n_in: usize, n_out: usize) -> candle_core::Result<Self> {
        Ok(Conv1D {
            weight: vb.get((n_in, n_out), "weight")?,
            bias: vb.get(n_out, "bias")?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.weight)?.broadcast_add(&self.bias)
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    GeluTanh,
    GeluErf,
    Relu,
    Silu,
}

impl Activation {
    fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::GeluTanh => x.gelu(),
            Activation::GeluErf => x.gelu_erf(),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1D,
    attn_proj: Conv1D,
    ln_2: LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
    n_head: usize,
    scale: f64,
    act: Activation,
}

impl Block {
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.ln_1.forward(x)?;
        let h = self.attention(&h, mask)?;
        let x = (x + h)?;
        let h = self.ln_2.forward(&x)?;
        let h = self
            .mlp_proj
            .forward(&self.act.apply(&self.c_fc.forward(&h)?)?)?;
        x + h
    }

    fn attention(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.n_head;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape((b, t, self.n_head, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?)? * self.scale)?;
        let min = Tensor::new(f32::MIN, x.device())?
            .to_dtype(scores.dtype())?
            .broadcast_as(scores.shape())?;
        let scores = mask
            .broadcast_as(scores.shape())?
            .where_cond(&scores, &min)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        self.attn_proj.forward(&y)
    }
}

/// A GPT-2 language model.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Tensor,
    /// The configuration.
    pub config: Gpt2Config,
}

impl Gpt2 {
    /// Build from weights named as transformers saves `GPT2LMHeadModel` (`transformer.` prefix
    /// optional); the head is tied to the token embedding unless `lm_head.weight` exists.
    pub fn load(vb: VarBuilder, cfg: &Gpt2Config) -> candle_core::Result<Gpt2> {
        let act = Activation::parse(&cfg.activation_function).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "unsupported activation_function `{}`",
                cfg.activation_function
            ))
        })?;
        let root = if vb.contains_tensor("transformer.wte.weight") {
            vb.pp("transformer")
        } else {
            vb.clone()
        };
        let c = cfg.n_embd;
        let inner = cfg.n_inner.unwrap_or(4 * c);
        let wte = Embedding::new(root.get((cfg.vocab_size, c), "wte.weight")?, c);
        let wpe = Embedding::new(root.get((cfg.n_positions, c), "wpe.weight")?, c);
        let ln = |vb: VarBuilder| layer_norm(c, cfg.layer_norm_epsilon, vb);
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let vb = root.pp(format!("h.{i}"));
            let mut scale = if cfg.scale_attn_weights {
                1.0 / ((c / cfg.n_head) as f64).sqrt()
            } else {
                1.0
            };
            if cfg.scale_attn_by_inverse_layer_idx {
                scale /= (i + 1) as f64;
            }
            blocks.push(Block {
                ln_1: ln(vb.pp("ln_1"))?,
                c_attn: Conv1D::load(vb.pp("attn.c_attn"), c, 3 * c)?,
                attn_proj: Conv1D::load(vb.pp("attn.c_proj"), c, c)?,
                ln_2: ln(vb.pp("ln_2"))?,
                c_fc: Conv1D::load(vb.pp("mlp.c_fc"), c, inner)?,
                mlp_proj: Conv1D::load(vb.pp("mlp.c_proj"), inner, c)?,
                n_head: cfg.n_head,
                scale,
                act,
            });
        }
        let ln_f = ln(root.pp("ln_f"))?;
        let lm_head = if vb.contains_tensor("lm_head.weight") {
            vb.get((cfg.vocab_size, c), "lm_head.weight")?
        } else {
            wte.embeddings().clone()
        };
        Ok(Gpt2 {
            wte,
            wpe,
            blocks,
            ln_f,
            lm_head,
            config: cfg.clone(),
        })
    }

    /// Logits `[B, T, V]` for token ids `[B, T]`, position ids `[B, T]` and a key mask
    /// `[B, T]` (u8, 1 = real token). Attention is causal and never looks at masked keys.
    pub fn forward(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        key_mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_b, t) = ids.dims2()?;
        let device = ids.device();
        let mut h = self
            .wte
            .forward(ids)?
            .broadcast_add(&self.wpe.forward(positions)?)?;
        let mask = attention_mask(key_mask, t, device)?;
        for block in &self.blocks {
            h = block.forward(&h, &mask)?;
        }
        let h = self.ln_f.forward(&h)?;
        h.broadcast_matmul(&self.lm_head.t()?)
    }
}

/// `[B, 1, T, T]` u8 mask: query i may attend to key j when j ≤ i and key j is real.
fn attention_mask(key_mask: &Tensor, t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let causal = Tensor::tril2(t, DType::U8, device)?;
    causal
        .unsqueeze(0)?
        .broadcast_mul(&key_mask.to_dtype(DType::U8)?.unsqueeze(1)?)?
        .unsqueeze(1)
}

/// Log-probabilities `[B, T-1]` of each next token under `logits` `[B, T, V]`.
pub fn next_token_logprobs(logits: &Tensor, ids: &Tensor) -> candle_core::Result<Tensor> {
    let (_b, t, _v) = logits.dims3()?;
    let logp = candle_nn::ops::log_softmax(
        &logits.narrow(1, 0, t - 1)?.to_dtype(DType::F32)?,
        D::Minus1,
    )?;
    let labels = ids.narrow(1, 1, t - 1)?.unsqueeze(2)?.contiguous()?;
    logp.gather(&labels, 2)?.squeeze(2)
}
