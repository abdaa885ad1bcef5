//! CPU kernels for the element-wise hot spots of scoring: the tanh-approximated GELU, the
//! log-probability of chosen next tokens (a log-softmax normaliser per row and a gather that
//! never materialise `[N, V]` log-probabilities), a masked attention softmax whose result does
//! not depend on where padding sits, and a decoding step's attention over the KV cache. All split
//! the work over rayon threads; other devices and dtypes use candle's generic operations.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
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

/// Rows of a `[B, H, K, D]` tensor with unit stride along D (a view of the KV cache):
/// row `j` of batch-head `bh`.
struct Rows<'a> {
    data: &'a [f32],
    offset: usize,
    heads: usize,
    strides: [usize; 3],
    len: usize,
    width: usize,
}

impl<'a> Rows<'a> {
    fn new(s: &'a CpuStorage, l: &Layout) -> Result<Rows<'a>> {
        let (_, heads, len, width) = l.shape().dims4()?;
        let st = l.stride();
        if st[3] != 1 {
            candle_core::bail!("decode attention: keys and values need unit stride along D");
        }
        Ok(Rows {
            data: s.as_slice::<f32>()?,
            offset: l.start_offset(),
            heads,
            strides: [st[0], st[1], st[2]],
            len,
            width,
        })
    }

    fn row(&self, bh: usize, j: usize) -> &'a [f32] {
        let at = self.offset
            + (bh / self.heads) * self.strides[0]
            + (bh % self.heads) * self.strides[1]
            + j * self.strides[2];
        &self.data[at..at + self.width]
    }
}

/// A dot product in 16 lanes (each summing in index order), then the lanes in order: the
/// same bits for the same vectors wherever they sit.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for ((s, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let tail = a.len() - a.len() % 16;
    lanes.iter().sum::<f32>()
        + a[tail..]
            .iter()
            .zip(&b[tail..])
            .map(|(x, y)| x * y)
            .sum::<f32>()
}

/// A decoding step's attention scores: one query per batch row and head `[B, H, 1, D]`
/// against its keys `[B, H, K, D]` → `[B, H, 1, K]`, without a matrix product per head.
struct DecodeScores;

impl CustomOp2 for DecodeScores {
    fn name(&self) -> &'static str {
        "decode-scores"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = contiguous(s1.as_slice::<f32>()?, l1)?;
        let (b, h, _, d) = l1.shape().dims4()?;
        let keys = Rows::new(s2, l2)?;
        let mut out = vec![0f32; b * h * keys.len];
        out.par_chunks_mut(keys.len.max(1))
            .enumerate()
            .for_each(|(bh, o)| {
                let q = &q[bh * d..(bh + 1) * d];
                for (j, o) in o.iter_mut().enumerate() {
                    *o = dot(q, keys.row(bh, j));
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, h, 1, keys.len))))
    }
}

/// A decoding step's attention output: probabilities `[B, H, 1, K]` times values
/// `[B, H, K, D]` → `[B, H, 1, D]`, each output summed over the keys in order (zero
/// probabilities, the masked keys, skipped: adding their zero changes nothing).
struct DecodeMix;

impl CustomOp2 for DecodeMix {
    fn name(&self) -> &'static str {
        "decode-mix"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let p = contiguous(s1.as_slice::<f32>()?, l1)?;
        let (b, h, _, k) = l1.shape().dims4()?;
        let values = Rows::new(s2, l2)?;
        let d = values.width;
        let mut out = vec![0f32; b * h * d];
        out.par_chunks_mut(d.max(1))
            .enumerate()
            .for_each(|(bh, o)| {
                for (j, &pj) in p[bh * k..(bh + 1) * k].iter().enumerate() {
                    if pj != 0.0 {
                        for (o, &v) in o.iter_mut().zip(values.row(bh, j)) {
                            *o += pj * v;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, h, 1, d))))
    }
}

/// Whether [`decode_scores`] and [`decode_mix`] take a query `q`: one position, CPU, f32.
pub fn decodes(q: &Tensor) -> Result<bool> {
    Ok(q.dim(2)? == 1 && q.device().is_cpu() && q.dtype() == DType::F32)
}

fn unit_last_stride(x: &Tensor) -> Result<Tensor> {
    if x.stride().last() == Some(&1) {
        Ok(x.clone())
    } else {
        x.contiguous()
    }
}

/// Scores `[B, H, 1, K]` of one query `[B, H, 1, D]` per row and head against keys
/// `[B, H, K, D]` (see [`decodes`]).
pub fn decode_scores(q: &Tensor, k: &Tensor) -> Result<Tensor> {
    q.contiguous()?
        .apply_op2_no_bwd(&unit_last_stride(k)?, &DecodeScores)
}

/// Probabilities `[B, H, 1, K]` times values `[B, H, K, D]` (see [`decodes`]).
pub fn decode_mix(p: &Tensor, v: &Tensor) -> Result<Tensor> {
    p.contiguous()?
        .apply_op2_no_bwd(&unit_last_stride(v)?, &DecodeMix)
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

    #[test]
    fn decode_attention_matches_candles_products_on_a_cache_view() {
        let dev = Device::Cpu;
        // A cache of capacity 9 holding 7 positions, viewed as keys and values.
        let cache = Tensor::randn(0f32, 1.0, (3, 4, 9, 20), &dev).unwrap();
        let k = cache.narrow(2, 0, 7).unwrap();
        let v = (cache.narrow(2, 1, 7).unwrap() * 0.5).unwrap();
        let q = Tensor::randn(0f32, 1.0, (3, 4, 1, 20), &dev).unwrap();
        let scores = decode_scores(&q, &k).unwrap();
        let reference = q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap();
        assert!(max_diff(&scores, &reference) < 1e-5);
        // Masked keys (probability 0) contribute nothing.
        let seen = Tensor::new(&[1u8, 1, 0, 1, 1, 1, 1], &dev)
            .unwrap()
            .reshape((1, 1, 1, 7))
            .unwrap()
            .broadcast_as((3, 1, 1, 7))
            .unwrap();
        let probs = masked_softmax(&scores, &seen, 1.0).unwrap();
        let mixed = decode_mix(&probs, &v).unwrap();
        let reference = probs.matmul(&v.contiguous().unwrap()).unwrap();
        assert_eq!(mixed.dims(), &[3, 4, 1, 20]);
        assert!(max_diff(&mixed, &reference) < 1e-5);
        // One row's numbers are the same alone as among others, in a longer cache view.
        let alone =
            decode_scores(&q.narrow(0, 1, 1).unwrap(), &k.narrow(0, 1, 1).unwrap()).unwrap();
        assert_eq!(
            alone.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            scores
                .narrow(0, 1, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
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
        let lowest = Tensor::new(f32::MIN, &dev)
            .unwrap()
            .broadcast_as(scores.shape())
            .unwrap();
        let reference = candle_nn::ops::softmax_last_dim(
            &seen
                .broadcast_as(scores.shape())
                .unwrap()
                .where_cond(&(&scores * 0.125).unwrap(), &lowest)
                .unwrap(),
        )
        .unwrap();
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
