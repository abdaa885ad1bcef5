//! MAUVE as the `mauve-text` package (0.4) computes `compute_mauve(p_features, q_features)`:
//! rows L2-normalised, PCA keeping 90 % of the variance, k-means quantisation of both
//! samples together (best of 5 restarts, 500 iterations), histograms, the divergence curve
//! over 25 mixture weights with scaling 5, and the area under it; also the frontier integral
//! and the smoothed (`*_star`) variants. Features are the final hidden state of a text's last
//! token under a causal LM (the authors used gpt2-large and 256 tokens).
//!
//! k-means is seeded (k-means++, where faiss samples random points) and does not replay
//! faiss's random stream: on data whose clusters are unambiguous the histograms (up to the
//! order of clusters, which MAUVE ignores) and the scores are the package's.

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Implementation version.
pub const VERSION: i32 = 1;

/// The package's parameters, with its defaults.
#[derive(Debug, Clone)]
pub struct MauveConfig {
    /// Histogram size; `None` = the package's `auto`: max(2, round(min(|P|, |Q|) / 10)).
    pub num_buckets: Option<usize>,
    /// Variance kept by PCA.
    pub explained_variance: f64,
    /// k-means restarts (the lowest objective wins).
    pub num_redo: usize,
    /// k-means iterations per restart.
    pub max_iter: usize,
    /// Points on the divergence curve.
    pub discretization: usize,
    /// The constant `c`.
    pub scaling: f64,
    /// Seed of the k-means initialisation.
    pub seed: u64,
}

impl Default for MauveConfig {
    fn default() -> Self {
        MauveConfig {
            num_buckets: None,
            explained_variance: 0.9,
            num_redo: 5,
            max_iter: 500,
            discretization: 25,
            scaling: 5.0,
            seed: 25,
        }
    }
}

/// What MAUVE computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Mauve {
    /// MAUVE (0–1, higher = closer).
    pub mauve: f64,
    /// Frontier integral (0–1, lower = closer).
    pub frontier_integral: f64,
    /// MAUVE of the add-½ smoothed histograms.
    pub mauve_star: f64,
    /// Frontier integral of the smoothed histograms.
    pub frontier_integral_star: f64,
    /// Histogram of P over the clusters.
    pub p_hist: Vec<f64>,
    /// Histogram of Q over the clusters.
    pub q_hist: Vec<f64>,
    /// PCA dimensions kept.
    pub dims: usize,
    /// Feature rows of Q (the model text).
    pub q_rows: usize,
}

/// MAUVE between feature sets `p` (e.g. human text) and `q` (model text), rows of equal
/// length. `None` when either is empty.
pub fn mauve(p: &[Vec<f32>], q: &[Vec<f32>], cfg: &MauveConfig) -> Option<Mauve> {
    if p.is_empty() || q.is_empty() {
        return None;
    }
    let k = cfg
        .num_buckets
        .unwrap_or_else(|| auto_buckets(p.len().min(q.len())));
    let rows: Vec<&Vec<f32>> = q.iter().chain(p).collect();
    let (data, dims) = pca(&rows, cfg.explained_variance);
    let labels = kmeans(&data, dims, k, cfg);
    let (ql, pl) = labels.split_at(q.len());
    let counts = |ls: &[usize]| {
        let mut c = vec![0.0f64; k];
        for &l in ls {
            c[l] += 1.0;
        }
        c
    };
    let (pc, qc) = (counts(pl), counts(ql));
    let norm = |c: &[f64], add: f64| {
        let s: f64 = c.iter().map(|x| x + add).sum();
        c.iter().map(|x| (x + add) / s).collect::<Vec<f64>>()
    };
    let (ph, qh) = (norm(&pc, 0.0), norm(&qc, 0.0));
    let (ps, qs) = (norm(&pc, 0.5), norm(&qc, 0.5));
    Some(Mauve {
        mauve: area(&ph, &qh, cfg),
        frontier_integral: frontier_integral(&ph, &qh),
        mauve_star: area(&ps, &qs, cfg),
        frontier_integral_star: frontier_integral(&ps, &qs),
        p_hist: ph,
        q_hist: qh,
        dims,
        q_rows: q.len(),
    })
}

/// The package's `auto` histogram size: `max(2, int(round(n / 10)))`, with Python's
/// round-half-to-even.
fn auto_buckets(n: usize) -> usize {
    ((n as f64 / 10.0).round_ties_even() as usize).max(2)
}

/// Rows L2-normalised, projected on the principal components that explain
/// `explained_variance` of the variance; returns the projections (row-major, f32 as faiss
/// takes them) and their dimension.
fn pca(rows: &[&Vec<f32>], explained_variance: f64) -> (Vec<f32>, usize) {
    let n = rows.len();
    let d = rows[0].len();
    let mut x = DMatrix::<f64>::from_fn(n, d, |i, j| f64::from(rows[i][j]));
    for mut r in x.row_iter_mut() {
        let norm = r.norm();
        if norm > 0.0 {
            r /= norm;
        }
    }
    let mean = x.row_mean();
    for mut r in x.row_iter_mut() {
        r -= &mean;
    }
    // Eigen-decompose the smaller of XᵀX and XXᵀ; the projections are XV = US.
    let (values, proj) = if d <= n {
        let e = SymmetricEigen::new(x.transpose() * &x);
        let p = &x * &e.eigenvectors;
        (e.eigenvalues, p)
    } else {
        let e = SymmetricEigen::new(&x * x.transpose());
        let s = e.eigenvalues.map(|v| v.max(0.0).sqrt());
        let p = &e.eigenvectors * DMatrix::from_diagonal(&s);
        (e.eigenvalues, p)
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let mut cum = 0.0;
    let mut keep = order.len();
    for (i, &c) in order.iter().enumerate() {
        cum += values[c].max(0.0) / total;
        if cum >= explained_variance {
            keep = i + 1;
            break;
        }
    }
    let mut out = Vec::with_capacity(n * keep);
    for i in 0..n {
        for &c in &order[..keep] {
            out.push(proj[(i, c)] as f32);
        }
    }
    (out, keep)
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(point: &[f32], centroids: &[f32], dims: usize) -> (usize, f32) {
    centroids
        .chunks(dims)
        .map(|c| dist2(point, c))
        .enumerate()
        .fold(
            (0, f32::INFINITY),
            |best, (i, d)| {
                if d < best.1 { (i, d) } else { best }
            },
        )
}

/// k-means++ seeding: each next centroid is a point drawn with probability proportional to
/// its squared distance from the nearest centroid so far.
fn plus_plus(data: &[f32], dims: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = data.len() / dims;
    let point = |i: usize| &data[i * dims..(i + 1) * dims];
    let mut centroids = point(rng.random_range(0..n)).to_vec();
    let mut d2: Vec<f64> = (0..n)
        .map(|i| f64::from(dist2(point(i), &centroids)))
        .collect();
    while centroids.len() < k * dims {
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.random_range(0.0..total);
            d2.iter()
                .position(|&d| {
                    target -= d;
                    target < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        let c = point(next).to_vec();
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(f64::from(dist2(point(i), &c)));
        }
        centroids.extend(c);
    }
    centroids
}

/// Lloyd's k-means from k-means++ seeds, best objective over the restarts; the cluster of
/// every point.
fn kmeans(data: &[f32], dims: usize, k: usize, cfg: &MauveConfig) -> Vec<usize> {
    let n = data.len() / dims;
    let k = k.min(n);
    let point = |i: usize| &data[i * dims..(i + 1) * dims];
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed + 2);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..cfg.num_redo.max(1) {
        let mut centroids = plus_plus(data, dims, k, &mut rng);
        let mut labels = vec![usize::MAX; n];
        for _ in 0..cfg.max_iter.max(1) {
            let mut changed = false;
            for (i, l) in labels.iter_mut().enumerate() {
                let (c, _) = nearest(point(i), &centroids, dims);
                changed |= *l != c;
                *l = c;
            }
            if !changed {
                break;
            }
            let mut sums = vec![0.0f64; k * dims];
            let mut sizes = vec![0usize; k];
            for (i, &l) in labels.iter().enumerate() {
                sizes[l] += 1;
                for (s, &v) in sums[l * dims..(l + 1) * dims].iter_mut().zip(point(i)) {
                    *s += f64::from(v);
                }
            }
            for c in 0..k {
                if sizes[c] == 0 {
                    // An empty cluster restarts at a random point.
                    let j = rng.random_range(0..n);
                    centroids[c * dims..(c + 1) * dims].copy_from_slice(point(j));
                    continue;
                }
                for j in 0..dims {
                    centroids[c * dims + j] = (sums[c * dims + j] / sizes[c] as f64) as f32;
                }
            }
        }
        let objective: f64 = (0..n)
            .map(|i| f64::from(nearest(point(i), &centroids, dims).1))
            .sum();
        let labels: Vec<usize> = (0..n)
            .map(|i| nearest(point(i), &centroids, dims).0)
            .collect();
        if best.as_ref().is_none_or(|(o, _)| objective < *o) {
            best = Some((objective, labels));
        }
    }
    best.map(|b| b.1).unwrap_or_default()
}

fn kl(p: &[f64], q: &[f64]) -> f64 {
    let mut total = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a != 0.0 && b == 0.0 {
            return f64::INFINITY;
        }
        if a != 0.0 {
            total += a * (a / b).ln();
        }
    }
    total
}

/// Area under the divergence curve, averaged over both orientations (the package's MAUVE).
fn area(p: &[f64], q: &[f64], cfg: &MauveConfig) -> f64 {
    let m = cfg.discretization;
    let mut curve = vec![(0.0, f64::INFINITY)];
    for i in 0..m {
        let w = if m == 1 {
            1e-6
        } else {
            1e-6 + (1.0 - 2e-6) * i as f64 / (m - 1) as f64
        };
        let r: Vec<f64> = p
            .iter()
            .zip(q)
            .map(|(a, b)| w * a + (1.0 - w) * b)
            .collect();
        curve.push((kl(q, &r), kl(p, &r)));
    }
    curve.push((f64::INFINITY, 0.0));
    let pts: Vec<(f64, f64)> = curve
        .into_iter()
        .map(|(x, y)| ((-cfg.scaling * x).exp(), (-cfg.scaling * y).exp()))
        .collect();
    let trapz = |mut v: Vec<(f64, f64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v.windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum::<f64>()
    };
    0.5 * (trapz(pts.clone()) + trapz(pts.iter().map(|&(x, y)| (y, x)).collect()))
}

fn frontier_integral(p: &[f64], q: &[f64]) -> f64 {
    let mut total = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a == 0.0 && b == 0.0 {
            continue;
        } else if a == 0.0 {
            total += b / 4.0;
        } else if b == 0.0 {
            total += a / 4.0;
        } else if (a - b).abs() > 1e-8 {
            total += 0.25 * (a + b) - 0.5 * (a * b * (a.ln() - b.ln()) / (a - b));
        }
    }
    total * 2.0
}

/// Turns texts into MAUVE features; the engine implements it for causal LMs.
pub trait Featurizer {
    /// Why featurization failed.
    type Error;
    /// One feature row per text that has tokens (texts without tokens are left out).
    fn features(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error>;
}

/// MAUVE between the texts `p` (e.g. references) and `q` (generations), featurized by `f`.
pub fn mauve_of_texts<F: Featurizer>(
    f: &F,
    p: &[&str],
    q: &[&str],
    cfg: &MauveConfig,
) -> Result<Option<Mauve>, F::Error> {
    Ok(mauve(&f.features(p)?, &f.features(q)?, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_buckets_round_half_to_even_like_python() {
        assert_eq!(auto_buckets(5), 2);
        assert_eq!(auto_buckets(25), 2);
        assert_eq!(auto_buckets(35), 4);
        assert_eq!(auto_buckets(71), 7);
    }
}
