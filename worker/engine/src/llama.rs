//! The Llama family on candle-nn building blocks, with per-row position ids, a padding mask
//! and a KV cache: Llama 1–3, Mistral (sliding-window attention, Nemo's `head_dim`), Mixtral
//! (sparse mixture of experts), Qwen2 (q/k/v biases), Qwen3 (q/k norms), Gemma 2 (alternating
//! sliding and global layers, soft-capped scores and logits, (1 + w) norms around each block,
//! scaled embeddings) and Gemma 3 (q/k norms, local and global rotary bases).

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm, VarBuilder};

use super::config::LlamaConfig;
use super::kernels::gelu_tanh;
use super::layers::{Dense, KvCache, attend, repeat_kv, text_lengths, windowed_mask};
use super::rope::{RopeSpec, Rotary};

/// An RMS norm as the checkpoint's family defines it: `x · w`, or Gemma's `x · (1 + w)`.
fn norm(vb: VarBuilder, size: usize, c: &LlamaConfig) -> Result<RmsNorm> {
    let w = vb.get(size, "weight")?;
    let w = if c.gemma() { (w + 1.0)? } else { w };
    Ok(RmsNorm::new(w, c.rms_norm_eps))
}

#[derive(Debug, Clone)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    /// Norms over each head's queries and keys (Qwen3, Gemma 3).
    qk_norm: Option<(RmsNorm, RmsNorm)>,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
}

impl Attention {
    fn load(vb: VarBuilder, c: &LlamaConfig) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim());
        let bias = c.qkv_bias();
        let qk_norm = if c.qk_norm() {
            Some((norm(vb.pp("q_norm"), d, c)?, norm(vb.pp("k_norm"), d, c)?))
        } else {
            None
        };
        Ok(Attention {
            q: Dense::linear(vb.pp("q_proj"), h, c.num_attention_heads * d, bias)?,
            k: Dense::linear(vb.pp("k_proj"), h, c.kv_heads() * d, bias)?,
            v: Dense::linear(vb.pp("v_proj"), h, c.kv_heads() * d, bias)?,
            o: Dense::linear(
                vb.pp("o_proj"),
                c.num_attention_heads * d,
                h,
                c.attention_bias,
            )?,
            qk_norm,
            n_head: c.num_attention_heads,
            n_kv: c.kv_heads(),
            head_dim: d,
            scale: c.attention_scale(),
            softcap: c.attn_logit_softcapping,
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
        let heads = |y: Tensor, n: usize, norm: Option<&RmsNorm>| -> Result<Tensor> {
            let y = y.reshape((b, t, n, self.head_dim))?;
            let y = match norm {
                Some(norm) => norm.forward(&y)?,
                None => y,
            };
            y.transpose(1, 2)?.contiguous()
        };
        let (q_norm, k_norm) = match &self.qk_norm {
            Some((q, k)) => (Some(q), Some(k)),
            None => (None, None),
        };
        let q = heads(self.q.forward(x)?, self.n_head, q_norm)?;
        let k = heads(self.k.forward(x)?, self.n_kv, k_norm)?;
        let mut v = heads(self.v.forward(x)?, self.n_kv, None)?;
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
            self.scale,
            self.softcap,
        )?;
        self.o.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct GatedMlp {
    gate: Dense,
    up: Dense,
    down: Dense,
    /// GELU (tanh) where Gemma has it, SiLU otherwise.
    gelu: bool,
}

impl GatedMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.gate.forward(x)?;
        let gate = if self.gelu {
            gelu_tanh(&gate)?
        } else {
            gate.silu()?
        };
        self.down.forward(&(gate * self.up.forward(x)?)?)
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
    /// Gemma's norm of the attention's output.
    post_attn: Option<RmsNorm>,
    norm_2: RmsNorm,
    mlp: Mlp,
    /// Gemma's norm of the MLP's output.
    post_mlp: Option<RmsNorm>,
    /// The layer's own sliding window, where layers differ (Gemma, Qwen).
    window: Option<usize>,
    /// Index into the model's rotary embeddings.
    rotary: usize,
}

/// A Llama-family language model.
#[derive(Debug, Clone)]
pub struct Llama {
    embed: Embedding,
    /// Gemma multiplies embeddings by √hidden.
    embed_scale: Option<f64>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Dense,
    /// The rotary embeddings the layers use (Gemma 3: local and global).
    rotaries: Vec<Rotary>,
    /// Gemma 2's soft cap of the logits.
    final_softcap: Option<f64>,
    /// The sliding attention window of every layer (Mistral), if all share one.
    pub window: Option<usize>,
}

fn gated(
    vb: VarBuilder,
    (h, i): (usize, usize),
    bias: bool,
    gelu: bool,
    names: [&str; 3],
) -> Result<GatedMlp> {
    let lin = |n_in, n_out, name: &str| Dense::linear(vb.pp(name), n_in, n_out, bias);
    Ok(GatedMlp {
        gate: lin(h, i, names[0])?,
        up: lin(h, i, names[1])?,
        down: lin(i, h, names[2])?,
        gelu,
    })
}

impl Llama {
    /// Build from weights named as transformers saves `*ForCausalLM`.
    pub fn load(vb: VarBuilder, c: &LlamaConfig) -> Result<Llama> {
        let m = vb.pp("model");
        let h = c.hidden_size;
        let embed = Embedding::new(m.get((c.vocab_size, h), "embed_tokens.weight")?, h);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        let mut specs: Vec<RopeSpec> = Vec::new();
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
                                    (h, c.intermediate_size),
                                    false,
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
                    (h, c.intermediate_size),
                    c.mlp_bias,
                    c.gemma(),
                    ["gate_proj", "up_proj", "down_proj"],
                )?),
            };
            let gemma = |name: &str| -> Result<Option<RmsNorm>> {
                c.gemma().then(|| norm(l.pp(name), h, c)).transpose()
            };
            let spec = c
                .rope(i)
                .map_err(|e| candle_core::Error::msg(format!("{e:?}")))?;
            let rotary = match specs.iter().position(|s| *s == spec) {
                Some(r) => r,
                None => {
                    specs.push(spec);
                    specs.len() - 1
                }
            };
            let (norm_2, post_attn) = if c.gemma() {
                (
                    norm(l.pp("pre_feedforward_layernorm"), h, c)?,
                    gemma("post_attention_layernorm")?,
                )
            } else {
                (norm(l.pp("post_attention_layernorm"), h, c)?, None)
            };
            layers.push(Layer {
                norm_1: norm(l.pp("input_layernorm"), h, c)?,
                attn: Attention::load(l.pp("self_attn"), c)?,
                post_attn,
                norm_2,
                mlp,
                post_mlp: gemma("post_feedforward_layernorm")?,
                window: c.sliding(i).then_some(c.sliding_window).flatten(),
                rotary,
            });
        }
        // One window for every layer (Mistral) goes into the masks callers build; layers that
        // differ narrow the mask themselves.
        let windows: Vec<Option<usize>> = layers.iter().map(|l| l.window).collect();
        let window = match windows.first() {
            Some(&w) if windows.iter().all(|&x| x == w) => w,
            _ => None,
        };
        if window.is_some() {
            for l in &mut layers {
                l.window = None;
            }
        }
        let norm = norm(m.pp("norm"), h, c)?;
        let lm_head = Dense::head(&vb, (c.vocab_size, h), &m.pp("embed_tokens"), &embed)?;
        Ok(Llama {
            embed,
            embed_scale: c.gemma().then(|| (h as f64).sqrt()),
            layers,
            norm,
            lm_head,
            rotaries: specs.iter().map(|s| Rotary::new(c.head_dim(), s)).collect(),
            final_softcap: c.final_logit_softcapping,
            window,
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
        if let Some(s) = self.embed_scale {
            // transformers multiplies by √hidden rounded to the embedding's dtype.
            let s = Tensor::new(s as f32, x.device())?.to_dtype(x.dtype())?;
            x = x.broadcast_mul(&s)?;
        }
        let lengths = if self.rotaries.iter().any(Rotary::length_dependent) {
            Some(text_lengths(mask, positions)?)
        } else {
            None
        };
        let ropes = self
            .rotaries
            .iter()
            .map(|r| r.tables(positions, lengths.as_deref(), x.dtype(), x.device()))
            .collect::<Result<Vec<_>>>()?;
        let mut windowed: Vec<(usize, Tensor)> = Vec::new();
        for w in self.layers.iter().filter_map(|l| l.window) {
            if !windowed.iter().any(|(x, _)| *x == w) {
                windowed.push((w, windowed_mask(mask, positions, w)?));
            }
        }
        let after = |norm: &Option<RmsNorm>, h: Tensor| match norm {
            Some(n) => n.forward(&h),
            None => Ok(h),
        };
        for (i, l) in self.layers.iter().enumerate() {
            let mask = match l.window {
                Some(w) => windowed
                    .iter()
                    .find_map(|(x, m)| (*x == w).then_some(m))
                    .unwrap_or(mask),
                None => mask,
            };
            let h = l.attn.forward(
                &l.norm_1.forward(&x)?,
                &ropes[l.rotary],
                mask,
                cache.as_deref_mut().map(|c| (c, i)),
            )?;
            x = (x + after(&l.post_attn, h)?)?;
            let n = l.norm_2.forward(&x)?;
            let h = match &l.mlp {
                Mlp::Dense(m) => m.forward(&n)?,
                Mlp::Sparse(m) => m.forward(&n)?,
            };
            x = (x + after(&l.post_mlp, h)?)?;
        }
        self.norm.forward(&x)
    }

    /// Logits for hidden states (Gemma 2: soft-capped to ±`final_logit_softcapping`).
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        let logits = self.lm_head.forward(h)?;
        match self.final_softcap {
            Some(cap) => (logits / cap)?.tanh()?.affine(cap, 0.0),
            None => Ok(logits),
        }
    }
}
