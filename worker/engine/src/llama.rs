//! Llama, Mistral (sliding-window attention) and Mixtral (sparse mixture of experts) on
//! candle-nn building blocks, with per-row position ids, a padding mask and a KV cache.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm, VarBuilder, rms_norm};

use super::config::LlamaConfig;
use super::layers::{Dense, KvCache, Rotary, attend, repeat_kv};

#[derive(Debug, Clone)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, c: &LlamaConfig) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim());
        let bias = c.attention_bias;
        Ok(Attention {
            q: Dense::linear(vb.pp("q_proj"), h, c.num_attention_heads * d, bias)?,
            k: Dense::linear(vb.pp("k_proj"), h, c.kv_heads() * d, bias)?,
            v: Dense::linear(vb.pp("v_proj"), h, c.kv_heads() * d, bias)?,
            o: Dense::linear(vb.pp("o_proj"), c.num_attention_heads * d, h, bias)?,
            n_head: c.num_attention_heads,
            n_kv: c.kv_heads(),
            head_dim: d,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: &Tensor,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            y.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.q.forward(x)?, self.n_head)?;
        let k = heads(self.k.forward(x)?, self.n_kv)?;
        let mut v = heads(self.v.forward(x)?, self.n_kv)?;
        let q = candle_nn::rotary_emb::rope(&q, &rope.0, &rope.1)?;
        let mut k = candle_nn::rotary_emb::rope(&k, &rope.0, &rope.1)?;
        if let Some((cache, layer)) = cache {
            (k, v) = cache.append(layer, &k, &v)?;
        }
        let groups = self.n_head / self.n_kv;
        let y = attend(
            &q,
            &repeat_kv(&k, groups)?,
            &repeat_kv(&v, groups)?,
            mask,
            1.0 / (self.head_dim as f64).sqrt(),
        )?;
        self.o.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct GatedMlp {
    gate: Dense,
    up: Dense,
    down: Dense,
}

impl GatedMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.down
            .forward(&(self.gate.forward(x)?.silu()? * self.up.forward(x)?)?)
    }
}

/// Mixtral's sparse mixture of experts: a softmax router picks the top-k experts per token,
/// their weights renormalised to sum to one.
#[derive(Debug, Clone)]
struct Moe {
    router: Dense,
    experts: Vec<GatedMlp>,
    top_k: usize,
}

impl Moe {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let flat = x.reshape((b * t, h))?;
        let probs =
            candle_nn::ops::softmax_last_dim(&self.router.forward(&flat)?.to_dtype(DType::F32)?)?;
        let probs: Vec<Vec<f32>> = probs.to_vec2()?;
        let mut routed: Vec<(Vec<u32>, Vec<f32>)> = vec![(vec![], vec![]); self.experts.len()];
        for (token, p) in probs.iter().enumerate() {
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            let top = &order[..self.top_k];
            let sum: f32 = top.iter().map(|&e| p[e]).sum();
            for &e in top {
                routed[e].0.push(token as u32);
                routed[e].1.push(p[e] / sum);
            }
        }
        let mut out = flat.zeros_like()?;
        for (expert, (tokens, weights)) in self.experts.iter().zip(routed) {
            if tokens.is_empty() {
                continue;
            }
            let n = tokens.len();
            let idx = Tensor::from_vec(tokens, n, x.device())?;
            let w = Tensor::from_vec(weights, (n, 1), x.device())?.to_dtype(x.dtype())?;
            let y = expert
                .forward(&flat.index_select(&idx, 0)?)?
                .broadcast_mul(&w)?;
            out = out.index_add(&idx, &y, 0)?;
        }
        out.reshape((b, t, h))
    }
}

#[derive(Debug, Clone)]
enum Mlp {
    Dense(GatedMlp),
    Sparse(Moe),
}

#[derive(Debug, Clone)]
struct Layer {
    norm_1: RmsNorm,
    attn: Attention,
    norm_2: RmsNorm,
    mlp: Mlp,
}

/// A Llama-family language model (Llama, Mistral, Mixtral).
#[derive(Debug, Clone)]
pub struct Llama {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Dense,
    rotary: Rotary,
    /// Sliding attention window (Mistral), if any.
    pub window: Option<usize>,
}

fn gated(vb: VarBuilder, h: usize, i: usize, bias: bool, names: [&str; 3]) -> Result<GatedMlp> {
    let lin = |n_in, n_out, name: &str| Dense::linear(vb.pp(name), n_in, n_out, bias);
    Ok(GatedMlp {
        gate: lin(h, i, names[0])?,
        up: lin(h, i, names[1])?,
        down: lin(i, h, names[2])?,
    })
}

impl Llama {
    /// Build from weights named as transformers saves `*ForCausalLM`.
    pub fn load(vb: VarBuilder, c: &LlamaConfig) -> Result<Llama> {
        let m = vb.pp("model");
        let h = c.hidden_size;
        let embed = Embedding::new(m.get((c.vocab_size, h), "embed_tokens.weight")?, h);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = m.pp(format!("layers.{i}"));
            let mlp = match c.num_local_experts {
                Some(n) => {
                    let moe = l.pp("block_sparse_moe");
                    Mlp::Sparse(Moe {
                        router: Dense::linear(moe.pp("gate"), h, n, false)?,
                        experts: (0..n)
                            .map(|e| {
                                gated(
                                    moe.pp(format!("experts.{e}")),
                                    h,
                                    c.intermediate_size,
                                    false,
                                    ["w1", "w3", "w2"],
                                )
                            })
                            .collect::<Result<_>>()?,
                        top_k: c.num_experts_per_tok.unwrap_or(2),
                    })
                }
                None => Mlp::Dense(gated(
                    l.pp("mlp"),
                    h,
                    c.intermediate_size,
                    c.mlp_bias,
                    ["gate_proj", "up_proj", "down_proj"],
                )?),
            };
            layers.push(Layer {
                norm_1: rms_norm(h, c.rms_norm_eps, l.pp("input_layernorm"))?,
                attn: Attention::load(l.pp("self_attn"), c)?,
                norm_2: rms_norm(h, c.rms_norm_eps, l.pp("post_attention_layernorm"))?,
                mlp,
            });
        }
        let norm = rms_norm(h, c.rms_norm_eps, m.pp("norm"))?;
        let lm_head = Dense::head(&vb, (c.vocab_size, h), &m.pp("embed_tokens"), &embed)?;
        Ok(Llama {
            embed,
            layers,
            norm,
            lm_head,
            rotary: Rotary::new(c.head_dim(), c.rope_theta(), c.rope_factor()),
            window: c.sliding_window,
        })
    }

    /// Number of layers (for the cache).
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Final hidden states `[B, T, C]`.
    pub fn hidden(
        &self,
        ids: &Tensor,
        positions: &[Vec<u32>],
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let mut x = self.embed.forward(ids)?;
        let rope = self.rotary.tables(positions, x.dtype(), x.device())?;
        for (i, l) in self.layers.iter().enumerate() {
            let h = l.attn.forward(
                &l.norm_1.forward(&x)?,
                &rope,
                mask,
                cache.as_deref_mut().map(|c| (c, i)),
            )?;
            x = (x + h)?;
            let n = l.norm_2.forward(&x)?;
            let h = match &l.mlp {
                Mlp::Dense(m) => m.forward(&n)?,
                Mlp::Sparse(m) => m.forward(&n)?,
            };
            x = (x + h)?;
        }
        self.norm.forward(&x)
    }

    /// Logits for hidden states.
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(h)
    }
}
