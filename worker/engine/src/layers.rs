//! Building blocks shared by the architectures: the key-value cache, attention masks with
//! padding, causality and sliding windows, rotary position tables and attention itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use candle_nn::{Embedding, VarBuilder};
use linear::{Isa, PackedWeight, Precision};

use super::kernels::{attends, attention, masked_softmax};
use super::weights::TensorMap;

/// Keys and values of one layer: buffers `[B, H, capacity, D]` filled up to `len`.
#[derive(Debug, Clone)]
struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

/// Keys and values of earlier positions, per layer, in preallocated buffers that grow by
/// doubling, so that a decoding step writes one position instead of copying the whole cache.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    capacity: usize,
}

impl KvCache {
    /// An empty cache for `n_layers` layers.
    pub fn new(n_layers: usize) -> KvCache {
        Self::with_capacity(n_layers, 0)
    }

    /// An empty cache with room for `capacity` positions per layer before growing.
    pub fn with_capacity(n_layers: usize, capacity: usize) -> KvCache {
        KvCache {
            layers: vec![None; n_layers],
            capacity,
        }
    }

    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |l| l.len)
    }

    /// No positions cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `k`, `v` (`[B, H, T, D]`) to layer `i` and return views of all keys and values.
    pub fn append(&mut self, i: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, t, d) = k.dims4()?;
        let (_, hv, _, dv) = v.dims4()?;
        let layer = match self.layers[i].take() {
            Some(mut l) => {
                let cap = l.k.dim(2)?;
                if l.len + t > cap {
                    let new_cap = (2 * cap).max(l.len + t);
                    let grow = |old: &Tensor, heads: usize, dim: usize| -> Result<Tensor> {
                        let buf =
                            Tensor::zeros((b, heads, new_cap, dim), old.dtype(), old.device())?;
                        buf.slice_set(&old.narrow(2, 0, l.len)?.contiguous()?, 2, 0)?;
                        Ok(buf)
                    };
                    l.k = grow(&l.k, h, d)?;
                    l.v = grow(&l.v, hv, dv)?;
                }
                l
            }
            None => {
                let cap = self.capacity.max(t);
                LayerCache {
                    k: Tensor::zeros((b, h, cap, d), k.dtype(), k.device())?,
                    v: Tensor::zeros((b, hv, cap, dv), v.dtype(), v.device())?,
                    len: 0,
                }
            }
        };
        layer.k.slice_set(&k.contiguous()?, 2, layer.len)?;
        layer.v.slice_set(&v.contiguous()?, 2, layer.len)?;
        let len = layer.len + t;
        let out = (layer.k.narrow(2, 0, len)?, layer.v.narrow(2, 0, len)?);
        self.layers[i] = Some(LayerCache { len, ..layer });
        Ok(out)
    }

    /// A cache of `rows` empty rows whose `len` positions are all padding (to be filled with
    /// [`KvCache::put_row`]), shaped like `like`'s layers, with room for `capacity` positions.
    pub fn padded_like(
        like: &KvCache,
        rows: usize,
        len: usize,
        capacity: usize,
    ) -> Result<KvCache> {
        let cap = capacity.max(len);
        let layers = like
            .layers
            .iter()
            .map(|l| {
                l.as_ref()
                    .map(|l| -> Result<LayerCache> {
                        let (_, h, _, d) = l.k.dims4()?;
                        let (_, hv, _, dv) = l.v.dims4()?;
                        Ok(LayerCache {
                            k: Tensor::zeros((rows, h, cap, d), l.k.dtype(), l.k.device())?,
                            v: Tensor::zeros((rows, hv, cap, dv), l.v.dtype(), l.v.device())?,
                            len,
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            capacity: cap,
        })
    }

    /// Put the one row of `row` into row `slot`, its positions ending where this cache's do
    /// (the positions before them zeroed; the caller's key mask hides them). Continuous
    /// batching admits a prompt into a freed slot this way.
    pub fn put_row(&mut self, slot: usize, row: &KvCache) -> Result<()> {
        let len = self.len();
        for (l, r) in self.layers.iter_mut().zip(&row.layers) {
            let (Some(l), Some(r)) = (l.as_mut(), r.as_ref()) else {
                continue;
            };
            let place = |buf: &Tensor, src: &Tensor| -> Result<()> {
                let (_, h, cap, d) = buf.dims4()?;
                let one = Tensor::zeros((1, h, cap, d), buf.dtype(), buf.device())?;
                one.slice_set(&src.narrow(2, 0, r.len)?.contiguous()?, 2, len - r.len)?;
                buf.slice_set(&one, 0, slot)
            };
            place(&l.k, &r.k)?;
            place(&l.v, &r.v)?;
        }
        Ok(())
    }

    /// Drop the first `n` positions of every row (padding no row needs any more).
    pub fn trim_front(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        for l in self.layers.iter_mut().flatten() {
            let keep = l.len - n;
            let shift = |x: &Tensor| -> Result<Tensor> {
                let buf = x.zeros_like()?;
                buf.slice_set(&x.narrow(2, n, keep)?.contiguous()?, 2, 0)?;
                Ok(buf)
            };
            l.k = shift(&l.k)?;
            l.v = shift(&l.v)?;
            l.len = keep;
        }
        Ok(())
    }

    /// Keep only the batch rows `rows` (beam search reorders and prunes hypotheses).
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for l in self.layers.iter_mut().flatten() {
            l.k = l.k.index_select(rows, 0)?;
            l.v = l.v.index_select(rows, 0)?;
        }
        Ok(())
    }
}

/// `[B, 1, T, K]` u8 mask for queries at sequence indices `past..past+T` over keys
/// `0..K` (`K = past + T`): key j is visible to query i when j ≤ i, key j is a real token of
/// the query's own segment (`key_mask[b][j] == key_mask[b][i] != 0`; see [`Step`]) and, with a
/// sliding `window`, i − j < window.
///
/// [`Step`]: crate::model::Step
pub fn attention_mask(
    key_mask: &[Vec<u8>],
    past: usize,
    t: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let b = key_mask.len();
    let k = past + t;
    let mut m = vec![0u8; b * t * k];
    for (row, keys) in key_mask.iter().enumerate() {
        for qi in 0..t {
            let q = past + qi;
            let segment = keys.get(q).copied().unwrap_or(0);
            if segment == 0 {
                continue;
            }
            let lo = window.map_or(0, |w| (q + 1).saturating_sub(w));
            for (j, &key) in keys.iter().enumerate().take(q + 1).skip(lo) {
                m[(row * t + qi) * k + j] = u8::from(key == segment);
            }
        }
    }
    Tensor::from_vec(m, (b, 1, t, k), device)
}

/// The u8 mask `[B, 1, T, K]` (`K = past + T`) as values on the CPU, with its dimensions.
fn mask_values(mask: &Tensor) -> Result<(Vec<u8>, (usize, usize, usize))> {
    let (b, _, t, k) = mask.dims4()?;
    let values = mask
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<u8>()?;
    Ok((values, (b, t, k)))
}

/// `mask` narrowed to a sliding `window` for a layer of its own window (Gemma's alternating
/// layers): a query keeps a key it sees when their positions differ by less than `window`.
/// Keys of this pass are compared by `positions` (packed rows share positions between texts
/// that begin alike); keys of the cache by their distance in the row, which is the same for
/// the one text a cached row holds.
pub fn windowed_mask(mask: &Tensor, positions: &[Vec<u32>], window: usize) -> Result<Tensor> {
    let (mut m, (b, t, k)) = mask_values(mask)?;
    let past = k - t;
    for (row, pos) in positions.iter().enumerate().take(b) {
        for (qi, &qp) in pos.iter().enumerate().take(t) {
            let keys = &mut m[(row * t + qi) * k..][..k];
            for (j, seen) in keys.iter_mut().enumerate() {
                let distance = if j >= past {
                    qp.saturating_sub(pos[j - past]) as usize
                } else {
                    past + qi - j
                };
                if distance >= window {
                    *seen = 0;
                }
            }
        }
    }
    Tensor::from_vec(m, (b, 1, t, k), mask.device())
}

/// The length of the text each query belongs to, as transformers' dynamic rotary scaling
/// takes it: the largest position in this pass of the queries that share its first seen key
/// (one text, or texts packed with a shared beginning), plus one; 0 for padding.
pub fn text_lengths(mask: &Tensor, positions: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
    let (m, (b, t, k)) = mask_values(mask)?;
    Ok((0..b)
        .map(|row| {
            let first: Vec<Option<usize>> = (0..t)
                .map(|qi| m[(row * t + qi) * k..][..k].iter().position(|&x| x != 0))
                .collect();
            let mut longest: HashMap<usize, u32> = HashMap::new();
            for (qi, root) in first.iter().enumerate() {
                if let Some(root) = root {
                    let len = longest.entry(*root).or_default();
                    *len = (*len).max(positions[row][qi] + 1);
                }
            }
            first
                .iter()
                .map(|root| root.map_or(0, |r| longest[&r]))
                .collect()
        })
        .collect())
}

/// Repeat key/value heads for grouped-query attention: `[B, Hkv, T, D]` → `[B, Hkv·n, T, D]`.
pub fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, h, n, t, d))?
        .reshape((b, h * n, t, d))
}

/// Scaled dot-product attention with a u8 mask `[B, 1, T, K]`; q `[B, H, T, D]`,
/// k and v `[B, H, K, D]` (views are fine); returns `[B, T, H·D]`. With `softcap`, scaled
/// scores are capped to ±`softcap` by `cap · tanh(score / cap)` before the softmax (Gemma 2).
///
/// On the CPU this is [`attention`] (bf16 and f16 widened to f32 exactly, the output rounded
/// back once): each query visits only the keys it sees, and its output has the same bits
/// whatever padding, packed texts or cache surround them. Elsewhere (GPUs) the scores are a
/// matrix product and the softmax runs in f32 over the keys a query sees ([`masked_softmax`]).
/// For several queries the keys are then transposed into a contiguous `[D, K]` first: with the
/// transposed view, `gemm` computes products of at most 16 × 16 scores with a different
/// (horizontal) kernel than larger ones, so a short text's scores would change bits when
/// padding makes the product larger.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
    softcap: Option<f64>,
) -> Result<Tensor> {
    let scores = attention::Scores {
        scale: scale as f32,
        softcap: softcap.map(|c| c as f32),
    };
    if attends(q, k, v) {
        return attention(q, k, v, mask, scores);
    }
    // bf16/f16 on the CPU: widened (exactly), attended in f32, the output rounded once.
    let half = |x: &Tensor| x.device().is_cpu() && matches!(x.dtype(), DType::BF16 | DType::F16);
    if half(q) && half(k) && half(v) {
        let wide = |x: &Tensor| x.to_dtype(DType::F32);
        return attention(&wide(q)?, &wide(k)?, &wide(v)?, mask, scores)?.to_dtype(q.dtype());
    }
    let (b, h, t, _) = q.dims4()?;
    let q = q.contiguous()?;
    let mut scores = if t > 1 {
        q.matmul(&k.t()?.contiguous()?)?
    } else {
        q.matmul(&k.t()?)?
    };
    let mut scale = scale;
    if let Some(cap) = softcap {
        scores = ((scores.to_dtype(DType::F32)? * scale)? / cap)?
            .tanh()?
            .affine(cap, 0.0)?;
        scale = 1.0;
    }
    let probs = masked_softmax(&scores, mask, scale)?.to_dtype(q.dtype())?;
    let y = probs.matmul(&v.contiguous()?)?;
    let dv = y.dim(3)?;
    y.transpose(1, 2)?.reshape((b, t, h * dv))
}

/// Outputs up to which `gemm` computes a product with its horizontal kernel (sums across SIMD
/// lanes) instead of the usual one when the right side is a transposed view.
const HORIZONTAL_OUTPUTS: usize = 16 * 16;

/// `x W` for `x` `[..., K]` and `W` `[K, N]` as one 2-D matrix product (no per-batch copies).
///
/// On the CPU a product of at most [`HORIZONTAL_OUTPUTS`] outputs gets zero rows added (and
/// cut off again), so that every row count runs the same `gemm` kernel and a row's result
/// does not depend on how many rows share the product.
pub fn matmul_2d(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let k = dims[dims.len() - 1];
    let rows = x.elem_count() / k;
    let n = w.dim(1)?;
    let mut out: Vec<usize> = dims[..dims.len() - 1].to_vec();
    out.push(n);
    let x = x.reshape((rows, k))?;
    let y = if x.device().is_cpu() && rows * n <= HORIZONTAL_OUTPUTS {
        let pad = Tensor::zeros(
            (HORIZONTAL_OUTPUTS / n + 1 - rows, k),
            x.dtype(),
            x.device(),
        )?;
        Tensor::cat(&[&x, &pad], 0)?.matmul(w)?.narrow(0, 0, rows)?
    } else {
        x.matmul(w)?
    };
    y.reshape(out)
}

/// How a checkpoint stores a linear weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// `[N, K]` (`nn.Linear`, output heads).
    OutIn,
    /// `[K, N]` (GPT-2's Conv1D).
    InOut,
}

/// A packed weight and how its checkpoint stores it.
#[derive(Debug, Clone)]
struct Entry {
    weight: Arc<PackedWeight>,
    stored: Stored,
}

/// A model's packed weights by tensor name (a tied output head under its embedding's name
/// with [`TIED`] appended). The packed copy is the only one kept in memory; [`Self::tensor`]
/// gives back the checkpoint's tensor, and a model with an adapter merged shares every packed
/// weight the adapter does not replace.
#[derive(Debug, Clone, Default)]
pub struct PackedWeights(HashMap<String, Entry>);

/// Suffix of a tied output head's key.
const TIED: &str = "#tied-head";

/// The network being built on this thread ([`PackedWeights::build`]): its packed weights, and
/// the map of tensors read so far, from which a packed weight's tensor is dropped.
struct Building {
    packed: PackedWeights,
    read: Option<Arc<Mutex<TensorMap>>>,
}

thread_local! {
    static BUILDING: RefCell<Option<Building>> = const { RefCell::new(None) };
}

impl PackedWeights {
    /// Run `build`; the [`Dense`] layers it creates take their packed weight from `reuse` when
    /// it holds their name, else pack the tensor and remove it from `read` (the tensors read
    /// so far), so that only the packed copy stays in memory. Returns what `build` made and
    /// every packed weight it uses.
    pub fn build<T>(
        reuse: PackedWeights,
        read: Option<Arc<Mutex<TensorMap>>>,
        build: impl FnOnce() -> T,
    ) -> (T, PackedWeights) {
        BUILDING.with(|b| {
            *b.borrow_mut() = Some(Building {
                packed: reuse,
                read,
            })
        });
        let built = build();
        let packed = BUILDING.with(|b| b.borrow_mut().take().map(|b| b.packed));
        (built, packed.unwrap_or_default())
    }

    /// Without the weights made from any of `names` (tensors an adapter replaces).
    pub fn without<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> PackedWeights {
        let mut kept = self.0.clone();
        for name in names {
            kept.remove(name);
            kept.remove(&format!("{name}{TIED}"));
        }
        PackedWeights(kept)
    }

    /// Names of the checkpoint tensors held only here.
    pub fn tensor_names(&self) -> impl Iterator<Item = &String> {
        self.0.keys().filter(|k| !k.ends_with(TIED))
    }

    /// The checkpoint's tensor `name` (f32 on the CPU), if it was packed.
    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        let Some(e) = self.0.get(name).filter(|_| !name.ends_with(TIED)) else {
            return Ok(None);
        };
        let (k, n) = (e.weight.k(), e.weight.n());
        let kn = Tensor::from_vec(e.weight.unpack(), (k, n), &Device::Cpu)?;
        Ok(Some(match e.stored {
            Stored::InOut => kn,
            Stored::OutIn => kn.t()?.contiguous()?,
        }))
    }

    /// Whether the network being built has the packed weight `key` to reuse.
    fn reuses(key: &str) -> bool {
        BUILDING.with(|b| {
            b.borrow()
                .as_ref()
                .is_some_and(|b| b.packed.0.contains_key(key))
        })
    }

    /// The entry `key` of the network being built, packing `tensor()` if it has none yet.
    fn take_or_pack(
        key: String,
        stored: Stored,
        (isa, precision): (Isa, Precision),
        tensor: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Arc<PackedWeight>> {
        let reused = BUILDING.with(|b| {
            b.borrow()
                .as_ref()
                .and_then(|b| b.packed.0.get(&key).cloned())
        });
        if let Some(e) = reused {
            return Ok(e.weight);
        }
        let t = tensor()?;
        let (rows, cols) = t.dims2()?;
        // bf16 and f16 values widen to f32 exactly and pack back to themselves.
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        drop(t);
        let weight = Arc::new(match stored {
            Stored::OutIn => PackedWeight::from_columns(&data, cols, rows, isa, precision),
            Stored::InOut => PackedWeight::from_rows(&data, rows, cols, isa, precision),
        });
        BUILDING.with(|b| {
            if let Some(b) = b.borrow_mut().as_mut() {
                if let Some(read) = &b.read {
                    read.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&key);
                }
                let entry = Entry {
                    weight: weight.clone(),
                    stored,
                };
                b.packed.0.insert(key, entry);
            }
        });
        Ok(weight)
    }
}

/// A linear layer `x W + b` with `W` `[K, N]`.
///
/// On the CPU the weight is packed once, at load, in the model's dtype (f32, bf16 or f16) for
/// [`linear`]'s products (AVX-512 or AVX2/FMA, summing in f32) and only the packed copy is kept
/// ([`PackedWeights`]); elsewhere (GPU, CPUs without those instructions) the product is
/// [`matmul_2d`].
#[derive(Debug, Clone)]
pub enum Dense {
    /// Packed for the CPU kernels, with the bias as plain values.
    Packed {
        weight: Arc<PackedWeight>,
        bias: Option<Arc<[f32]>>,
    },
    /// The weight `[K, N]` (possibly a transposed view) and bias as tensors.
    Plain {
        weight: Tensor,
        bias: Option<Tensor>,
    },
}

impl Dense {
    /// An `nn.Linear` under `vb`: `weight` `[N, K]` and, with `bias`, `bias` `[N]`.
    pub fn linear(vb: VarBuilder, k: usize, n: usize, bias: bool) -> Result<Dense> {
        let bias = if bias { Some(vb.get(n, "bias")?) } else { None };
        Dense::load(&vb, Stored::OutIn, (k, n), bias)
    }

    /// GPT-2's Conv1D under `vb`: `weight` `[K, N]` and `bias` `[N]`.
    pub fn conv1d(vb: VarBuilder, k: usize, n: usize) -> Result<Dense> {
        let bias = vb.get(n, "bias")?;
        Dense::load(&vb, Stored::InOut, (k, n), Some(bias))
    }

    /// The output head `[vocab, hidden]`: `lm_head.weight` where the checkpoint has one, else
    /// tied to the token embedding `embed`, stored under `embed_vb`.
    pub fn head(
        vb: &VarBuilder,
        (vocab, hidden): (usize, usize),
        embed_vb: &VarBuilder,
        embed: &Embedding,
    ) -> Result<Dense> {
        let own = vb.pp("lm_head");
        if vb.contains_tensor("lm_head.weight")
            || PackedWeights::reuses(&tensor_name(&own, "weight"))
        {
            return Dense::linear(own, hidden, vocab, false);
        }
        let table = embed.embeddings();
        match packing(table.device(), table.dtype()) {
            Some(kernel) => {
                let key = format!("{}{TIED}", tensor_name(embed_vb, "weight"));
                let weight =
                    PackedWeights::take_or_pack(key, Stored::OutIn, kernel, || Ok(table.clone()))?;
                Ok(Dense::Packed { weight, bias: None })
            }
            None => Ok(Dense::Plain {
                weight: table.t()?,
                bias: None,
            }),
        }
    }

    fn load(
        vb: &VarBuilder,
        stored: Stored,
        (k, n): (usize, usize),
        bias: Option<Tensor>,
    ) -> Result<Dense> {
        let shape = match stored {
            Stored::OutIn => (n, k),
            Stored::InOut => (k, n),
        };
        let Some(kernel) = packing(vb.device(), vb.dtype()) else {
            let weight = vb.get(shape, "weight")?;
            let weight = match stored {
                Stored::OutIn => weight.t()?,
                Stored::InOut => weight,
            };
            return Ok(Dense::Plain { weight, bias });
        };
        let weight =
            PackedWeights::take_or_pack(tensor_name(vb, "weight"), stored, kernel, || {
                vb.get(shape, "weight")
            })?;
        let bias = match bias {
            Some(b) => Some(b.to_dtype(DType::F32)?.to_vec1::<f32>()?.into()),
            None => None,
        };
        Ok(Dense::Packed { weight, bias })
    }

    /// `x W + b` for `x` `[..., K]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            // A bf16/f16 input is widened, each output summed in f32 and rounded back once, as
            // a bf16 product with f32 accumulation gives.
            Dense::Packed { weight, bias } if x.dtype() != DType::F32 => x
                .to_dtype(DType::F32)?
                .apply_op1_no_bwd(&PackedProduct {
                    weight,
                    bias: bias.as_deref(),
                })?
                .to_dtype(x.dtype()),
            Dense::Packed { weight, bias } => x.contiguous()?.apply_op1_no_bwd(&PackedProduct {
                weight,
                bias: bias.as_deref(),
            }),
            Dense::Plain { weight, bias } => {
                let y = matmul_2d(x, weight)?;
                match bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
        }
    }
}

/// The kernel and precision of weights on `device` in `dtype`, if they are packed: on the CPU
/// in f32, bf16 or f16, kept in that precision and summed in f32.
fn packing(device: &Device, dtype: DType) -> Option<(Isa, Precision)> {
    let precision = match dtype {
        DType::F32 => Precision::F32,
        DType::BF16 => Precision::Bf16,
        DType::F16 => Precision::F16,
        _ => return None,
    };
    Isa::detect()
        .filter(|_| device.is_cpu())
        .map(|isa| (isa, precision))
}

/// The full name of tensor `name` under `vb`.
fn tensor_name(vb: &VarBuilder, name: &str) -> String {
    match vb.prefix() {
        p if p.is_empty() => name.to_string(),
        p => format!("{p}.{name}"),
    }
}

/// The candle operation running a [`PackedWeight`] product on a contiguous f32 input.
struct PackedProduct<'a> {
    weight: &'a PackedWeight,
    bias: Option<&'a [f32]>,
}

impl CustomOp1 for PackedProduct<'_> {
    fn name(&self) -> &'static str {
        "packed-product"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("packed product: contiguous f32 input expected")
        };
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&self.weight.k()) {
            candle_core::bail!(
                "packed product: input {dims:?} for a weight of {} rows",
                self.weight.k()
            )
        }
        let y = self.weight.product(&data[start..end], self.bias);
        if let Some(last) = dims.last_mut() {
            *last = self.weight.n();
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layers_window_counts_positions_in_the_pass_and_distance_in_the_cache() {
        // One cached key, then three queries at positions 1..4 of a packed row whose second
        // and third tokens are branches at the same position 2.
        let full = attention_mask(&[vec![1, 1, 1, 1]], 1, 3, None, &Device::Cpu).unwrap();
        let w = windowed_mask(&full, &[vec![1, 2, 2]], 2).unwrap();
        let flat: Vec<u8> = w.flatten_all().unwrap().to_vec1().unwrap();
        // The cached key is 2 away from the second query (dropped), 3 from the third; the third
        // query, a branch at position 2, keeps the key at index 2 (position 2, distance 0).
        assert_eq!(flat, vec![1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1]);
        let lengths = text_lengths(&full, &[vec![1, 2, 2]]).unwrap();
        assert_eq!(lengths, vec![vec![3, 3, 3]]);
    }

    #[test]
    fn masks_combine_padding_causality_and_windows() {
        // Row 0 is left-padded by one token; keys 0..4, queries at indices 1..4 (past = 1).
        let m = attention_mask(
            &[vec![0, 1, 1, 1], vec![1, 1, 1, 1]],
            1,
            3,
            None,
            &Device::Cpu,
        )
        .unwrap();
        let flat: Vec<u8> = m.flatten_all().unwrap().to_vec1().unwrap();
        let row0 = &flat[..12];
        assert_eq!(row0, &[0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1]);
        let w = attention_mask(&[vec![1, 1, 1, 1]], 0, 4, Some(2), &Device::Cpu).unwrap();
        let flat: Vec<u8> = w.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(flat, vec![1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1]);
        // Two packed texts and one padding position: each text sees only itself.
        let p = attention_mask(&[vec![1, 1, 2, 2, 0]], 0, 5, None, &Device::Cpu).unwrap();
        let flat: Vec<u8> = p.flatten_all().unwrap().to_vec1().unwrap();
        #[rustfmt::skip]
        assert_eq!(flat, vec![
            1, 0, 0, 0, 0,
            1, 1, 0, 0, 0,
            0, 0, 1, 0, 0,
            0, 0, 1, 1, 0,
            0, 0, 0, 0, 0,
        ]);
    }
}
