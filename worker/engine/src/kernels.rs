//! CPU kernels for the element-wise hot spots of scoring: the tanh-approximated GELU, the
//! log-probability of each next token (a fused log-softmax and gather that never
//! materialises `[B, T, V]` log-probabilities), and an attention softmax whose result does not
//! depend on where padding sits. All split the work over rayon threads; other devices and
//! dtypes use candle's generic operations.

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
        let mut out = vec![0f32; x.len()];
        const K: f32 = 2.0 * 0.797_884_6; // 2·√(2/π)
        out.par_chunks_mut(4096)
            .zip(x.par_chunks(4096))
            .for_each(|(o, x)| {
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = v / (1.0 + (-K * v * (1.0 + 0.044715 * v * v)).exp());
                }
            });
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

/// Softmax over the last dimension that sums the exponentials one after another in index
/// order. Masked scores become exact zeros, and adding a zero changes no sum, so a row's
/// probabilities are bitwise the same whatever padding or other packed texts surround its
/// keys (candle's softmax sums in SIMD lanes, whose grouping moves with the padding).
struct OrderedSoftmax;

impl CustomOp1 for OrderedSoftmax {
    fn name(&self) -> &'static str {
        "ordered-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s.as_slice::<f32>()?, l)?;
        let n = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n)
            .zip(x.par_chunks(n))
            .for_each(|(o, x)| {
                let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (o, &v) in o.iter_mut().zip(x) {
                    *o = (v - max).exp();
                    sum += *o;
                }
                for o in o.iter_mut() {
                    *o /= sum;
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Softmax over the last dimension; on the CPU in f32 with [`OrderedSoftmax`]'s padding-proof
/// sums.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1_no_bwd(&OrderedSoftmax)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// `[B, T-1]` log-probabilities of ids `[B, T]` (u32) at positions 1.. under logits `[B, T, V]`.
struct LabelLogprobs;

impl CustomOp2 for LabelLogprobs {
    fn name(&self) -> &'static str {
        "label-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = contiguous(s1.as_slice::<f32>()?, l1)?;
        let ids = contiguous(s2.as_slice::<u32>()?, l2)?;
        let (b, t, v) = l1.shape().dims3()?;
        let mut out = vec![0f32; b * (t - 1)];
        out.par_chunks_mut(t - 1).enumerate().for_each(|(row, o)| {
            for (pos, o) in o.iter_mut().enumerate() {
                let z = &logits[(row * t + pos) * v..(row * t + pos + 1) * v];
                let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = z.iter().map(|&x| (x - max).exp()).sum();
                let label = ids[row * t + pos + 1] as usize;
                *o = z[label] - max - sum.ln();
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, t - 1))))
    }
}

/// Log-probabilities `[B, T-1]` of each next token under `logits` `[B, T, V]`.
pub fn next_token_logprobs(logits: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let (_b, t, _v) = logits.dims3()?;
    if logits.device().is_cpu() && logits.dtype() == DType::F32 {
        return logits
            .contiguous()?
            .apply_op2_no_bwd(&ids.contiguous()?, &LabelLogprobs);
    }
    let logp = candle_nn::ops::log_softmax(
        &logits.narrow(1, 0, t - 1)?.to_dtype(DType::F32)?,
        D::Minus1,
    )?;
    let labels = ids.narrow(1, 1, t - 1)?.unsqueeze(2)?.contiguous()?;
    logp.gather(&labels, 2)?.squeeze(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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

        let logits = Tensor::randn(0f32, 3.0, (2, 5, 50), &dev).unwrap();
        let ids = Tensor::new(&[[1u32, 7, 3, 49, 0], [2, 2, 2, 10, 11]], &dev).unwrap();
        let fast = next_token_logprobs(&logits, &ids).unwrap();
        let logp =
            candle_nn::ops::log_softmax(&logits.narrow(1, 0, 4).unwrap(), D::Minus1).unwrap();
        let slow = logp
            .gather(
                &ids.narrow(1, 1, 4)
                    .unwrap()
                    .unsqueeze(2)
                    .unwrap()
                    .contiguous()
                    .unwrap(),
                2,
            )
            .unwrap()
            .squeeze(2)
            .unwrap();
        let d = (fast - slow)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "{d}");
    }
}
