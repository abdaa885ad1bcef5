//! CPU kernels for the hot spots of scoring: the tanh-approximated GELU, the log-probability of
//! chosen next tokens (a log-softmax normaliser per row and a gather that never materialise
//! `[N, V]` log-probabilities), f32 attention over the keys each query sees
//! (`nlebench-attention`) and, for f16/bf16 scores, a masked softmax whose result does not
//! depend on where padding sits. All split the work over rayon threads; other devices and dtypes
//! use candle's generic operations.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, D, DType, Layout, Result, Shape, Storage, Tensor,
};
use rayon::prelude::*;

fn contiguous<'a, T>(s: &'a [T], l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("kernel input must be contiguous"),
    }
}

/// `gelu_new` / `gelu_fast`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715x³))), computed as the equal
/// x·σ(2·√(2/π)·(x + 0.044715x³)).
struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s.as_slice::<f32>()?, l)?;
        const K: f32 = 2.0 * 0.797_884_6; // 2·√(2/π)
        let out: Vec<f32> = x
            .par_iter()
            .with_min_len(4096)
            .map(|&v| v / (1.0 + (-K * v * (1.0 + 0.044715 * v * v)).exp()))
            .collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// GELU (tanh approximation) of a tensor.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1_no_bwd(&GeluTanh)
    } else {
        x.gelu()
    }
}

/// Attention probabilities of scores `[B, H, T, K]` under a u8 mask `[B, 1, T, K]`: the softmax
/// of `scale × score` over the keys a query sees, summing the exponentials one after another
/// in key order. Unseen keys get exact zeros and cost no exponential; adding a zero changes no
/// sum, so a query's probabilities are bitwise the same whatever padding, packed texts or
/// other branches of a shared row surround its keys (candle's softmax sums in SIMD lanes,
/// whose grouping moves with the padding). A query that sees no key (padding) gets uniform
/// probabilities.
struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1.as_slice::<f32>()?, l1)?;
        let mask = contiguous(s2.as_slice::<u8>()?, l2)?;
        let (_, h, t, k) = l1.shape().dims4()?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(k)
            .zip(x.par_chunks(k))
            .enumerate()
            .for_each(|(row, (o, x))| {
                let (b, q) = (row / (h * t), row % t);
                let seen = &mask[(b * t + q) * k..][..k];
                let max = x
                    .iter()
                    .zip(seen)
                    .filter(|&(_, &m)| m != 0)
                    .map(|(&v, _)| v * self.scale)
                    .fold(f32::NEG_INFINITY, f32::max);
                if max == f32::NEG_INFINITY {
                    o.fill(1.0 / k as f32);
                    return;
                }
                let mut sum = 0f32;
                for ((o, &v), &m) in o.iter_mut().zip(x).zip(seen) {
                    if m != 0 {
                        *o = (v * self.scale - max).exp();
                        sum += *o;
                    }
                }
                for (o, &m) in o.iter_mut().zip(seen) {
                    if m != 0 {
                        *o /= sum;
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Attention probabilities (f32) of scores `[B, H, T, K]` under a u8 mask that broadcasts to
/// `[B, 1, T, K]` (1 where a query sees a key). On the CPU with [`MaskedSoftmax`]'s
/// padding-proof sums (scores in f16 or bf16 are scaled in their dtype, then widened);
/// elsewhere candle's softmax with unseen scores set to f32's lowest value (transformers uses
/// the dtype's lowest), so that fully masked rows stay finite.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    if scores.device().is_cpu() {
        let (b, _, t, k) = scores.dims4()?;
        let (scores, scale) = if scores.dtype() == DType::F32 {
            (scores.contiguous()?, scale as f32)
        } else {
            ((scores * scale)?.to_dtype(DType::F32)?, 1.0)
        };
        return scores.apply_op2_no_bwd(
            &mask.broadcast_as((b, 1, t, k))?.contiguous()?,
            &MaskedSoftmax { scale },
        );
    }
    let scores = (scores * scale)?.to_dtype(DType::F32)?;
    let lowest = Tensor::new(f32::MIN, scores.device())?.broadcast_as(scores.shape())?;
    let scores = mask
        .broadcast_as(scores.shape())?
        .where_cond(&scores, &lowest)?;
    candle_nn::ops::softmax_last_dim(&scores)
}

/// Whether [`attention`] takes these queries, keys and values: CPU, f32.
pub fn attends(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    [q, k, v]
        .iter()
        .all(|x| x.device().is_cpu() && x.dtype() == DType::F32)
}

/// Attention of queries `[B, H, T, D]` over keys `[B, H, K, D]` and values `[B, H, K, Dv]`
/// (any strides, unit along the last dimension) under a u8 mask that broadcasts to
/// `[B, 1, T, K]`, as `[B, T, H·Dv]`: `nlebench-attention`'s kernel, which visits only the
/// keys each query sees and gives each output the same bits wherever its keys sit (see
/// [`attends`]).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scores: impl Into<attention::Scores>,
) -> Result<Tensor> {
    let (b, h, t, _) = q.dims4()?;
    let (keys, dv) = (k.dim(2)?, v.dim(3)?);
    let unit = |x: &Tensor| -> Result<Tensor> {
        if x.stride().last() == Some(&1) {
            Ok(x.clone())
        } else {
            x.contiguous()
        }
    };
    let (q, k, v) = (unit(q)?, unit(k)?, unit(v)?);
    let mask = mask.broadcast_as((b, 1, t, keys))?.contiguous()?;
    let (ms, ml) = mask.storage_and_layout();
    let mask = contiguous(storage(&ms)?.as_slice::<u8>()?, ml)?;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let out = attention::attention(rows(&qs, ql)?, rows(&ks, kl)?, rows(&vs, vl)?, mask, scores);
    Tensor::from_vec(out, (b, t, h * dv), &candle_core::Device::Cpu)
}

fn storage(s: &Storage) -> Result<&CpuStorage> {
    match s {
        Storage::Cpu(s) => Ok(s),
        _ => candle_core::bail!("the CPU attention kernel needs tensors on the CPU"),
    }
}

/// A `[B, H, N, D]` tensor with unit stride along D as the kernel's rows.
fn rows<'a>(s: &'a Storage, l: &Layout) -> Result<attention::Rows<'a>> {
    let (b, h, n, d) = l.shape().dims4()?;
    let st = l.stride();
    Ok(attention::Rows::new(
        storage(s)?.as_slice::<f32>()?,
        l.start_offset(),
        [b, h, n, d],
        [st[0], st[1], st[2]],
    ))
}

/// Log-probabilities of `(row, label)` pairs under logits `[N, V]`: each row's log-softmax
/// normaliser once, however many labels it serves (a shared position predicts the next token
/// of every text that continues it).
struct LabelLogprobs<'a> {
    labels: &'a [(u32, u32)],
}

impl CustomOp1 for LabelLogprobs<'_> {
    fn name(&self) -> &'static str {
        "label-logprobs"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let logits = contiguous(s.as_slice::<f32>()?, l)?;
        let (_, v) = l.shape().dims2()?;
        let norms: Vec<(f32, f32)> = logits
            .par_chunks(v)
            .map(|z| {
                let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = z.iter().map(|&x| (x - max).exp()).sum();
                (max, sum.ln())
            })
            .collect();
        let out = self
            .labels
            .iter()
            .map(|&(row, label)| {
                let (max, ln_sum) = norms[row as usize];
                logits[row as usize * v + label as usize] - max - ln_sum
            })
            .collect::<Vec<f32>>();
        Ok((CpuStorage::F32(out), Shape::from(self.labels.len())))
    }
}

/// Log-probability of each `(row, label)` under logits `[N, V]`, without materialising the
/// `[N, V]` log-probabilities on the CPU.
pub fn label_logprobs(logits: &Tensor, labels: &[(u32, u32)]) -> Result<Vec<f32>> {
    let (_, v) = logits.dims2()?;
    if logits.device().is_cpu() && logits.dtype() == DType::F32 {
        return logits
            .contiguous()?
            .apply_op1_no_bwd(&LabelLogprobs { labels })?
            .to_vec1();
    }
    let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let flat: Vec<u32> = labels.iter().map(|&(r, l)| r * v as u32 + l).collect();
    let flat = Tensor::from_vec(flat, labels.len(), logits.device())?;
    logp.flatten_all()?.index_select(&flat, 0)?.to_vec1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use test_support::models::max_diff;

    /// candle's softmax of `scale × scores` with unseen keys at f32's lowest value.
    fn candle_softmax(scores: &Tensor, seen: &Tensor, scale: f64) -> Tensor {
        let lowest = Tensor::new(f32::MIN, scores.device())
            .unwrap()
            .broadcast_as(scores.shape())
            .unwrap();
        candle_nn::ops::softmax_last_dim(
            &seen
                .broadcast_as(scores.shape())
                .unwrap()
                .where_cond(&(scores * scale).unwrap(), &lowest)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn attention_matches_candles_products_on_cache_views() {
        let dev = Device::Cpu;
        // A cache of capacity 9 holding 7 positions, viewed as keys and values.
        let cache = Tensor::randn(0f32, 1.0, (3, 4, 9, 20), &dev).unwrap();
        let k = cache.narrow(2, 0, 7).unwrap();
        let v = (cache.narrow(2, 1, 7).unwrap() * 0.5).unwrap();
        // A decoding step (one query) and three queries; key 2 is padding.
        for t in [1, 3] {
            let q = Tensor::randn(0f32, 1.0, (3, 4, t, 20), &dev).unwrap();
            let seen: Vec<u8> = (0..3 * t * 7)
                .map(|x| {
                    let (i, j) = ((x / 7) % t, x % 7);
                    u8::from(j != 2 && j <= 7 - t + i)
                })
                .collect();
            let seen = Tensor::from_vec(seen, (3, 1, t, 7), &dev).unwrap();
            let got = attention(&q, &k, &v, &seen, 0.3).unwrap();
            let scores = q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap();
            let reference = candle_softmax(&scores, &seen, 0.3)
                .matmul(&v.contiguous().unwrap())
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .reshape((3, t, 80))
                .unwrap();
            assert_eq!(got.dims(), &[3, t, 80]);
            assert!(max_diff(&got, &reference) < 1e-5, "{t} queries");
            // One row's outputs are the same alone as among others.
            let one = |x: &Tensor| x.narrow(0, 1, 1).unwrap();
            let alone = attention(&one(&q), &one(&k), &one(&v), &one(&seen), 0.3).unwrap();
            let bits = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(bits(&alone), bits(&one(&got)));
        }
    }

    #[test]
    fn kernels_match_candles_generic_operations() {
        let dev = Device::Cpu;
        let x = Tensor::arange(-400f32, 400f32, &dev)
            .unwrap()
            .affine(0.02, 0.0)
            .unwrap();
        let d = (gelu_tanh(&x).unwrap() - x.gelu().unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);

        // The masked softmax against candle's: scaled, unseen keys at f32's lowest value; a
        // query that sees nothing (the last) gets uniform probabilities either way.
        let scores = Tensor::randn(0f32, 2.0, (2, 3, 4, 6), &dev).unwrap();
        let seen: Vec<u8> = (0..2 * 4 * 6)
            .map(|i| u8::from(i % 6 <= (i / 6) % 4 && i / 6 != 7))
            .collect();
        let seen = Tensor::from_vec(seen, (2, 1, 4, 6), &dev).unwrap();
        let reference = candle_softmax(&scores, &seen, 0.125);
        let probs = masked_softmax(&scores, &seen, 0.125).unwrap();
        assert!(max_diff(&probs, &reference) < 1e-6);
        let padding = probs.get(1).unwrap().get(2).unwrap().get(3).unwrap();
        assert_eq!(padding.to_vec1::<f32>().unwrap(), vec![1.0 / 6.0; 6]);

        let logits = Tensor::randn(0f32, 3.0, (3, 50), &dev).unwrap();
        let labels = [(0u32, 7u32), (1, 3), (1, 49), (2, 0), (0, 7)];
        let fast = label_logprobs(&logits, &labels).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let d = labels
            .iter()
            .zip(&fast)
            .map(|(&(r, l), &f)| (f - logp[r as usize][l as usize]).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "{d}");
    }
}
