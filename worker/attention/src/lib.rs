//! CPU f32 scaled dot-product attention that visits only the keys each query sees.
//!
//! Every number is one fixed chain of operations on the query's own keys, so a query's output
//! has the same bits whatever surrounds it: padding, other texts packed into its row, other
//! branches of a shared prefix, or a longer cache.
//!
//! - A score is sixteen fused multiply-add chains, lane `l` over the dimensions `d` with
//!   `d mod 16 = l` in index order from zero, then the lanes summed in a fixed tree.
//! - The softmax takes the largest scaled score, the exponentials one after another in key
//!   order, their sum in that order, and divides each by it.
//! - An output is one fused multiply-add chain over the seen keys, in key order, from zero.
//!
//! The AVX-512, AVX2/FMA and scalar kernels differ only in how many lanes an instruction holds,
//! so every CPU gives the same bits. Keys and values are read where they lie (a fused QKV
//! output, a key-value cache), and the cost grows with the keys each query sees, not with the
//! width of its row.

use rayon::prelude::*;

/// Lanes of a score's partial sums.
const LANES: usize = 16;

/// How a query's dot products become the scores its softmax takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Each dot product is multiplied by this.
    pub scale: f32,
    /// Scaled scores are soft-capped to ±this, `cap · tanh(score / cap)` (Gemma 2).
    pub softcap: Option<f32>,
}

impl From<f32> for Scores {
    fn from(scale: f32) -> Scores {
        Scores {
            scale,
            softcap: None,
        }
    }
}

/// The rows of a `[B, H, N, D]` tensor with unit stride along `D`, anywhere in a buffer (a
/// view into a fused QKV output or a key-value cache).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [f32],
    offset: usize,
    dims: [usize; 4],
    strides: [usize; 3],
}

impl<'a> Rows<'a> {
    /// Rows at `offset` in `data` with dimensions `[B, H, N, D]` and strides for `B`, `H`, `N`.
    ///
    /// # Panics
    /// When the last row lies beyond `data`.
    pub fn new(data: &'a [f32], offset: usize, dims: [usize; 4], strides: [usize; 3]) -> Self {
        let [b, h, n, d] = dims;
        if b * h * n * d > 0 {
            let last = offset + (b - 1) * strides[0] + (h - 1) * strides[1] + (n - 1) * strides[2];
            assert!(
                last + d <= data.len(),
                "rows {dims:?} with strides {strides:?} from {offset} exceed {} values",
                data.len()
            );
        }
        Rows {
            data,
            offset,
            dims,
            strides,
        }
    }

    fn row(&self, b: usize, h: usize, j: usize) -> &'a [f32] {
        let at = self.offset + b * self.strides[0] + h * self.strides[1] + j * self.strides[2];
        &self.data[at..at + self.dims[3]]
    }
}

/// Attention of queries `q` `[B, H, T, D]` over keys `k` `[B, H, K, D]` and values `v`
/// `[B, H, K, Dv]`, dot products turned into scores as `scores` says, where query `i` of row `b` sees key `j` when
/// `mask[(b·T + i)·K + j]` is not zero. Returns `[B, T, H·Dv]`, heads side by side; a query
/// that sees no key (padding) gets zeros.
///
/// # Panics
/// When the shapes disagree or the mask does not hold `B·T·K` values.
pub fn attention(q: Rows, k: Rows, v: Rows, mask: &[u8], scores: impl Into<Scores>) -> Vec<f32> {
    let how = scores.into();
    let [b, h, t, d] = q.dims;
    let keys = k.dims[2];
    let dv = v.dims[3];
    assert!(
        k.dims[..2] == [b, h] && v.dims[..3] == k.dims[..3] && k.dims[3] == d,
        "queries {:?}, keys {:?} and values {:?} disagree",
        q.dims,
        k.dims,
        v.dims
    );
    assert_eq!(mask.len(), b * t * keys, "a mask of B·T·K values expected");
    let kernel = Kernel::detect();
    let mut out = vec![0f32; b * t * h * dv];
    out.par_chunks_mut((h * dv).max(1))
        .with_min_len(4)
        .enumerate()
        .for_each(|(row, out)| {
            let (bi, i) = (row / t, row % t);
            let seen = runs(&mask[row * keys..(row + 1) * keys]);
            if seen.is_empty() {
                return;
            }
            let mut scores = Vec::new();
            for (hi, out) in out.chunks_mut(dv.max(1)).enumerate() {
                let head = Head {
                    q: q.row(bi, hi, i),
                    k,
                    v,
                    at: (bi, hi),
                };
                kernel.run(&head, &seen, how, &mut scores, out);
            }
        });
    out
}

/// The vector instructions the kernel uses on this CPU, for records: `AVX-512`, `AVX2/FMA`
/// or `scalar`.
pub fn kernel_name() -> &'static str {
    match Kernel::detect() {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => "AVX-512",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => "AVX2/FMA",
        Kernel::Scalar => "scalar",
    }
}

/// The runs of keys a query sees, `start..end` in key order.
type Seen = [(usize, usize)];

/// The runs of consecutive keys a query sees, as `start..end`, in key order.
fn runs(seen: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut j = 0;
    while j < seen.len() {
        if seen[j] == 0 {
            j += 1;
            continue;
        }
        let start = j;
        while j < seen.len() && seen[j] != 0 {
            j += 1;
        }
        runs.push((start, j));
    }
    runs
}

/// One query in one head: its vector, and the keys and values of its batch row and head `at`.
struct Head<'a> {
    q: &'a [f32],
    k: Rows<'a>,
    v: Rows<'a>,
    at: (usize, usize),
}

/// The vector instructions the kernel runs with.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Scalar,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    fn run(self, head: &Head, seen: &Seen, how: Scores, scores: &mut Vec<f32>, out: &mut [f32]) {
        match self {
            // SAFETY: `detect` found AVX-512F on this CPU.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::avx512(head, seen, how, scores, out) },
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::avx2(head, seen, how, scores, out) },
            Kernel::Scalar => query(head, seen, how, scores, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Head, Scores, Seen, query};

    /// [`query`] compiled for AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub fn avx512(head: &Head, seen: &Seen, how: Scores, scores: &mut Vec<f32>, out: &mut [f32]) {
        query(head, seen, how, scores, out);
    }

    /// [`query`] compiled for AVX2 with FMA.
    #[target_feature(enable = "avx2,fma")]
    pub fn avx2(head: &Head, seen: &Seen, how: Scores, scores: &mut Vec<f32>, out: &mut [f32]) {
        query(head, seen, how, scores, out);
    }
}

/// One query's attention in one head over the keys it sees, added into `out` (zeros).
#[inline(always)]
fn query(head: &Head, seen: &Seen, how: Scores, scores: &mut Vec<f32>, out: &mut [f32]) {
    let (b, h) = head.at;
    let keys = || seen.iter().flat_map(|&(start, end)| start..end);
    scores.clear();
    // A plain loop: `extend` would run `dot` outside this function's target features.
    for j in keys() {
        scores.push(dot(head.q, head.k.row(b, h, j)));
    }
    let mut scale = how.scale;
    if let Some(cap) = how.softcap {
        for s in scores.iter_mut() {
            *s = cap * (*s * scale / cap).tanh();
        }
        scale = 1.0;
    }
    let max = scores
        .iter()
        .map(|&s| s * scale)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s * scale - max).exp();
        sum += *s;
    }
    for (&e, j) in scores.iter().zip(keys()) {
        let p = e / sum;
        for (o, &x) in out.iter_mut().zip(head.v.row(b, h, j)) {
            *o = p.mul_add(x, *o);
        }
    }
}

/// `q · k`: lane `l` an FMA chain over the dimensions `d mod 16 = l` in index order, then the
/// sixteen lanes summed in a fixed tree (the upper half added to the lower, lane by lane).
#[inline(always)]
fn dot(q: &[f32], k: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (mut qs, mut ks) = (q.chunks_exact(LANES), k.chunks_exact(LANES));
    for (q, k) in (&mut qs).zip(&mut ks) {
        for ((a, &q), &k) in acc.iter_mut().zip(q).zip(k) {
            *a = q.mul_add(k, *a);
        }
    }
    for ((a, &q), &k) in acc.iter_mut().zip(qs.remainder()).zip(ks.remainder()) {
        *a = q.mul_add(k, *a);
    }
    let mut width = LANES / 2;
    while width > 0 {
        let (low, high) = acc.split_at_mut(width);
        for (a, &b) in low.iter_mut().zip(&high[..width]) {
            *a += b;
        }
        width /= 2;
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `[1, H, N, D]` rows stored contiguously.
    fn rows(x: &[f32], h: usize, n: usize, d: usize) -> Rows<'_> {
        Rows::new(x, 0, [1, h, n, d], [h * n * d, n * d, d])
    }

    /// Attention in f64 of query vector `q` over the keys `seen` of one head's `k` and `v`.
    fn reference(q: &[f32], k: &[f32], v: &[f32], seen: &[usize], scale: f32) -> Vec<f64> {
        let d = q.len();
        let s: Vec<f64> = seen
            .iter()
            .map(|&j| {
                let dot: f64 = (0..d)
                    .map(|l| f64::from(q[l]) * f64::from(k[j * d + l]))
                    .sum();
                dot * f64::from(scale)
            })
            .collect();
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        (0..d)
            .map(|l| {
                seen.iter()
                    .zip(&e)
                    .map(|(&j, e)| e / sum * f64::from(v[j * d + l]))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn outputs_match_f64_attention_and_keep_their_bits_wherever_the_keys_sit() {
        let (h, d, keys) = (3, 40, 37);
        let scale = 1.0 / (d as f32).sqrt();
        let (q, k, v) = (
            values(h * keys * d, 1),
            values(h * keys * d, 2),
            values(h * keys * d, 3),
        );
        let causal: Vec<u8> = (0..keys)
            .flat_map(|i| (0..keys).map(move |j| u8::from(j <= i)))
            .collect();
        let attend = |q: &[f32], k: &[f32], v: &[f32], n: usize, mask: &[u8]| {
            attention(
                rows(q, h, n, d),
                rows(k, h, n, d),
                rows(v, h, n, d),
                mask,
                scale,
            )
        };
        let alone = attend(&q, &k, &v, keys, &causal);
        for i in [0, 1, 16, 36] {
            for hi in 0..h {
                let head = |x: &[f32]| x[hi * keys * d..(hi + 1) * keys * d].to_vec();
                let seen: Vec<usize> = (0..=i).collect();
                let want = reference(
                    &head(&q)[i * d..(i + 1) * d],
                    &head(&k),
                    &head(&v),
                    &seen,
                    scale,
                );
                let got = &alone[(i * h + hi) * d..][..d];
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-5,
                        "query {i} head {hi}: {g} vs {w}"
                    );
                }
            }
        }
        // The same text at keys 50..87 of a row of 100 whose other keys hold other values and
        // are seen by no query of the text: every output keeps its bits.
        let (wide, at) = (100, 50);
        let place = |x: &[f32], seed: u64| {
            let mut w = values(h * wide * d, seed);
            for hi in 0..h {
                w[(hi * wide + at) * d..(hi * wide + at + keys) * d]
                    .copy_from_slice(&x[hi * keys * d..(hi + 1) * keys * d]);
            }
            w
        };
        let (qw, kw, vw) = (place(&q, 4), place(&k, 5), place(&v, 6));
        let mut mask = vec![0u8; wide * wide];
        for i in 0..keys {
            for j in 0..=i {
                mask[(at + i) * wide + at + j] = 1;
            }
        }
        let packed = attend(&qw, &kw, &vw, wide, &mask);
        for i in 0..keys {
            let a = &alone[i * h * d..(i + 1) * h * d];
            let p = &packed[(at + i) * h * d..(at + i + 1) * h * d];
            assert!(
                a.iter().zip(p).all(|(x, y)| x.to_bits() == y.to_bits()),
                "query {i} changed bits in a wider row"
            );
        }
        assert!(
            packed[..at * h * d].iter().all(|&x| x == 0.0),
            "queries that see no key get zeros"
        );
    }

    #[test]
    fn the_vector_kernels_give_the_scalar_kernels_bits() {
        let (keys, d) = (70, 24);
        let (q, k, v) = (
            values(keys * d, 7),
            values(keys * d, 8),
            values(keys * d, 9),
        );
        let (kr, vr) = (rows(&k, 1, keys, d), rows(&v, 1, keys, d));
        let outputs: Vec<Vec<f32>> = [Kernel::Scalar, Kernel::detect()]
            .into_iter()
            .map(|kernel| {
                let mut out = vec![0f32; keys * d];
                for (i, out) in out.chunks_mut(d).enumerate() {
                    let head = Head {
                        q: &q[i * d..(i + 1) * d],
                        k: kr,
                        v: vr,
                        at: (0, 0),
                    };
                    // Runs with gaps, as in a packed row whose texts share a beginning.
                    let mask: Vec<u8> = (0..keys)
                        .map(|j| u8::from(j <= i && (j < 3 || (10..30).contains(&j) || j >= 40)))
                        .collect();
                    kernel.run(&head, &runs(&mask), 0.2.into(), &mut Vec::new(), out);
                }
                out
            })
            .collect();
        assert!(
            outputs[0]
                .iter()
                .zip(&outputs[1])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{:?} differs from the scalar kernel",
            Kernel::detect()
        );
    }

    /// Gemma 2's soft-capped scores, with a cap small enough to bend them.
    fn capped() -> Scores {
        Scores {
            scale: 0.2,
            softcap: Some(0.5),
        }
    }

    #[test]
    fn soft_capped_scores_match_f64_attention_on_every_kernel() {
        let (keys, d) = (33, 24);
        let (q, k, v) = (
            values(keys * d, 11),
            values(keys * d, 12),
            values(keys * d, 13),
        );
        let (kr, vr) = (rows(&k, 1, keys, d), rows(&v, 1, keys, d));
        let i = keys - 1;
        let seen = [(0, keys)];
        let outputs: Vec<Vec<f32>> = [Kernel::Scalar, Kernel::detect()]
            .into_iter()
            .map(|kernel| {
                let head = Head {
                    q: &q[i * d..(i + 1) * d],
                    k: kr,
                    v: vr,
                    at: (0, 0),
                };
                let mut out = vec![0f32; d];
                kernel.run(&head, &seen, capped(), &mut Vec::new(), &mut out);
                out
            })
            .collect();
        let qi = &q[i * d..(i + 1) * d];
        let s: Vec<f64> = (0..keys)
            .map(|j| {
                let dot: f64 = (0..d)
                    .map(|l| f64::from(qi[l]) * f64::from(k[j * d + l]))
                    .sum();
                0.5 * (dot * 0.2 / 0.5).tanh()
            })
            .collect();
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        for l in 0..d {
            let want: f64 = (0..keys)
                .map(|j| e[j] / sum * f64::from(v[j * d + l]))
                .sum();
            assert!(
                (f64::from(outputs[0][l]) - want).abs() < 1e-5,
                "dimension {l}"
            );
        }
        assert!(
            outputs[0]
                .iter()
                .zip(&outputs[1])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the vector kernel's soft-capped outputs differ from the scalar kernel's"
        );
        let plain = attention(rows(&q, 1, keys, d), kr, vr, &vec![1; keys * keys], 0.2);
        assert_ne!(
            &plain[i * d..(i + 1) * d],
            &outputs[0][..],
            "the cap changed nothing"
        );
    }

    #[test]
    fn seen_keys_are_runs_in_order() {
        assert_eq!(
            runs(&[0, 1, 1, 0, 0, 1, 0, 1, 1]),
            vec![(1, 3), (5, 6), (7, 9)]
        );
        assert!(runs(&[0, 0]).is_empty());
    }
}
