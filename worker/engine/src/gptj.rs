//! GPT-J (NB-GPT-J-6B) on candle-nn building blocks: parallel attention and MLP, interleaved
//! rotary embeddings on the first `rotary_dim` dimensions of each head, attention in f32.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder, layer_norm};

use super::config::GptJConfig;
use super::gpt2::Activation;
use super::layers::{Dense, KvCache, attend};
use super::rope::{RopeSpec, Rotary};

#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
    fc_in: Dense,
    fc_out: Dense,
    n_head: usize,
    head_dim: usize,
    rotary_dim: usize,
    act: Activation,
}

impl Block {
    fn rotate(&self, x: &Tensor, rope: &(Tensor, Tensor)) -> Result<Tensor> {
        let d = x.dim(3)?;
        let rot = candle_nn::rotary_emb::rope_i(
            &x.narrow(3, 0, self.rotary_dim)?.contiguous()?,
            &rope.0,
            &rope.1,
        )?;
        if self.rotary_dim == d {
            return Ok(rot);
        }
        Tensor::cat(
            &[&rot, &x.narrow(3, self.rotary_dim, d - self.rotary_dim)?],
            3,
        )?
        .contiguous()
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let h = self.ln_1.forward(x)?;
        let heads = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.n_head, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = self.rotate(&heads(self.q.forward(&h)?)?, rope)?;
        let mut k = self.rotate(&heads(self.k.forward(&h)?)?, rope)?;
        let mut v = heads(self.v.forward(&h)?)?;
        if let Some((cache, layer)) = cache {
            (k, v) = cache.append(layer, &k, &v)?;
        }
        let dtype = x.dtype();
        let y = attend(
            &q.to_dtype(DType::F32)?,
            &k.to_dtype(DType::F32)?,
            &v.to_dtype(DType::F32)?,
            mask,
            1.0 / (self.head_dim as f64).sqrt(),
            None,
        )?
        .to_dtype(dtype)?;
        let attn = self.out.forward(&y)?;
        let mlp = self
            .fc_out
            .forward(&self.act.apply(&self.fc_in.forward(&h)?)?)?;
        (attn + mlp)? + x
    }
}

/// A GPT-J language model.
#[derive(Debug, Clone)]
pub struct GptJ {
    wte: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Dense,
    rotary: Rotary,
}

impl GptJ {
    /// Build from weights named as transformers saves `GPTJForCausalLM`.
    pub fn load(vb: VarBuilder, c: &GptJConfig) -> Result<GptJ> {
        let act = Activation::named(&c.activation_function)?;
        let t = vb.pp("transformer");
        let e = c.n_embd;
        let head_dim = e / c.n_head;
        let rotary_dim = c.rotary_dim.unwrap_or(head_dim);
        let inner = c.n_inner.unwrap_or(4 * e);
        let mut blocks = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let b = t.pp(format!("h.{i}"));
            blocks.push(Block {
                ln_1: layer_norm(e, c.layer_norm_epsilon, b.pp("ln_1"))?,
                q: Dense::linear(b.pp("attn.q_proj"), e, e, false)?,
                k: Dense::linear(b.pp("attn.k_proj"), e, e, false)?,
                v: Dense::linear(b.pp("attn.v_proj"), e, e, false)?,
                out: Dense::linear(b.pp("attn.out_proj"), e, e, false)?,
                fc_in: Dense::linear(b.pp("mlp.fc_in"), e, inner, true)?,
                fc_out: Dense::linear(b.pp("mlp.fc_out"), inner, e, true)?,
                n_head: c.n_head,
                head_dim,
                rotary_dim,
                act,
            });
        }
        Ok(GptJ {
            wte: Embedding::new(t.get((c.vocab_size, e), "wte.weight")?, e),
            blocks,
            ln_f: layer_norm(e, c.layer_norm_epsilon, t.pp("ln_f"))?,
            lm_head: Dense::linear(vb.pp("lm_head"), e, c.vocab_size, true)?,
            rotary: Rotary::new(rotary_dim, &RopeSpec::plain(10000.0)),
        })
    }

    /// Number of blocks (for the cache).
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Final hidden states `[B, T, C]`.
    pub fn hidden(
        &self,
        ids: &Tensor,
        positions: &[Vec<u32>],
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let mut x = self.wte.forward(ids)?;
        let rope = self.rotary.tables(positions, None, x.dtype(), x.device())?;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &rope, mask, cache.as_deref_mut().map(|c| (c, i)))?;
        }
        self.ln_f.forward(&x)
    }

    /// Logits for hidden states.
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(h)
    }
}
