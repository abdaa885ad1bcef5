//! GPT-2 (NorGPT) on candle-nn building blocks: hidden states at every position, a
//! key-padding mask, per-row position ids and a key-value cache.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, layer_norm};

use super::config::Gpt2Config;
use super::layers::{Dense, KvCache, attend};

/// Activation functions named in transformers configs.
#[derive(Debug, Clone, Copy)]
pub enum Activation {
    /// `gelu_new`, `gelu_fast`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `gelu`: the exact erf form.
    GeluErf,
    /// `relu`.
    Relu,
    /// `silu` / `swish`.
    Silu,
}

impl Activation {
    /// Parse a transformers activation name.
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    /// The activation a config's field names, or an error naming it.
    pub fn named(name: &str) -> Result<Activation> {
        Activation::parse(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("unsupported activation_function `{name}`"))
        })
    }

    /// Apply to a tensor.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::GeluTanh => super::kernels::gelu_tanh(x),
            Activation::GeluErf => x.gelu_erf(),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Dense,
    attn_proj: Dense,
    ln_2: LayerNorm,
    c_fc: Dense,
    mlp_proj: Dense,
    n_head: usize,
    scale: f64,
    act: Activation,
}

impl Block {
    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let h = self.attention(&self.ln_1.forward(x)?, mask, cache)?;
        let x = (x + h)?;
        let h = self.mlp_proj.forward(
            &self
                .act
                .apply(&self.c_fc.forward(&self.ln_2.forward(&x)?)?)?,
        )?;
        x + h
    }

    fn attention(
        &self,
        x: &Tensor,
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let hd = c / self.n_head;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape((b, t, self.n_head, hd))?
                .transpose(1, 2)
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some((cache, layer)) = cache {
            (k, v) = cache.append(layer, &k, &v)?;
        }
        self.attn_proj
            .forward(&attend(&q, &k, &v, mask, self.scale, None)?)
    }
}

/// A GPT-2 language model.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Dense,
}

impl Gpt2 {
    /// Build from weights named as transformers saves `GPT2LMHeadModel` (`transformer.` prefix
    /// optional); the head is tied to the token embedding unless `lm_head.weight` exists.
    pub fn load(vb: VarBuilder, cfg: &Gpt2Config) -> Result<Gpt2> {
        let act = Activation::named(&cfg.activation_function)?;
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
                c_attn: Dense::conv1d(vb.pp("attn.c_attn"), c, 3 * c)?,
                attn_proj: Dense::conv1d(vb.pp("attn.c_proj"), c, c)?,
                ln_2: ln(vb.pp("ln_2"))?,
                c_fc: Dense::conv1d(vb.pp("mlp.c_fc"), c, inner)?,
                mlp_proj: Dense::conv1d(vb.pp("mlp.c_proj"), inner, c)?,
                n_head: cfg.n_head,
                scale,
                act,
            });
        }
        let ln_f = ln(root.pp("ln_f"))?;
        let lm_head = Dense::head(&vb, (cfg.vocab_size, c), &root.pp("wte"), &wte)?;
        Ok(Gpt2 {
            wte,
            wpe,
            blocks,
            ln_f,
            lm_head,
        })
    }

    /// Number of blocks (for the cache).
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Final hidden states `[B, T, C]` for token ids `[B, T]`, position ids and a mask from
    /// [`super::layers::attention_mask`].
    pub fn hidden(
        &self,
        ids: &Tensor,
        positions: &[Vec<u32>],
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let pos: Vec<u32> = positions.iter().flatten().copied().collect();
        let pos = Tensor::from_vec(pos, (b, t), ids.device())?;
        let mut h = self
            .wte
            .forward(ids)?
            .broadcast_add(&self.wpe.forward(&pos)?)?;
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, mask, cache.as_deref_mut().map(|c| (c, i)))?;
        }
        self.ln_f.forward(&h)
    }

    /// Logits for hidden states.
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(h)
    }

    /// Weight dtype.
    pub fn dtype(&self) -> DType {
        self.wte.embeddings().dtype()
    }
}
