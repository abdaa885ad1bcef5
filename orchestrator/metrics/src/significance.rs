//! Significance of a difference between two runs on the same examples: McNemar's exact test
//! for shares of per-example yes/no outcomes, an exact paired randomization (sign-flip) test
//! for small example sets, a seeded paired bootstrap for means, and Holm's correction across
//! metrics. Each matches its reference (statsmodels `mcnemar(exact=True)`, scipy
//! `permutation_test(permutation_type="samples")`, statsmodels `multipletests(method="holm")`;
//! values recorded by `tools/reference/significance.py`).

use rand::{Rng, SeedableRng};

/// Version of the tests' implementation, stored with each comparison.
pub const VERSION: i32 = 1;

/// McNemar's exact test (statsmodels `mcnemar(table, exact=True)`): `b` examples where only
/// the first run is right, `c` where only the second is; the two-sided p-value of the
/// binomial test of min(b, c) in b + c trials with p = ½, at most 1.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // log of C(n, j) / 2^n, term by term; the sum by log-sum-exp.
    let ln2 = std::f64::consts::LN_2;
    let mut log_term = -(n as f64) * ln2;
    let mut logs = Vec::with_capacity(k as usize + 1);
    logs.push(log_term);
    for j in 1..=k {
        log_term += ((n - j + 1) as f64).ln() - (j as f64).ln();
        logs.push(log_term);
    }
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let cdf = max.exp() * logs.iter().map(|l| (l - max).exp()).sum::<f64>();
    (2.0 * cdf).min(1.0)
}

/// The exact paired randomization test over all 2^n sign flips of the differences `d`
/// (n ≤ 24), two-sided as scipy computes it: 2 · min(P(T ≤ t), P(T ≥ t)), at most 1, with T
/// the sum of the flipped differences and t the observed sum (compared with scipy's relative
/// tolerance of 100 machine epsilons).
pub fn randomization_exact(d: &[f64]) -> Option<f64> {
    let n = d.len();
    if n == 0 || n > 24 {
        return None;
    }
    let observed: f64 = d.iter().sum();
    let gamma = (observed * f64::EPSILON * 100.0).abs();
    let (mut less, mut greater) = (0u64, 0u64);
    for mask in 0u64..(1 << n) {
        let t: f64 = d
            .iter()
            .enumerate()
            .map(|(i, x)| if mask >> i & 1 == 1 { -x } else { *x })
            .sum();
        if t <= observed + gamma {
            less += 1;
        }
        if t >= observed - gamma {
            greater += 1;
        }
    }
    let total = (1u64 << n) as f64;
    Some((2.0 * less.min(greater) as f64 / total).min(1.0))
}

/// A seeded paired bootstrap of the mean difference `b − a`: the examples are resampled with
/// replacement `iterations` times; the p-value is the share of resampled differences at least
/// as far from the observed one as the observed one is from 0 (Berg-Kirkpatrick et al.
/// 2012's shifted test, two-sided). Returns (observed difference, p-value).
pub fn paired_bootstrap(a: &[f64], b: &[f64], iterations: usize, seed: u64) -> Option<(f64, f64)> {
    let n = a.len();
    if n == 0 || n != b.len() || iterations == 0 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let observed = d.iter().sum::<f64>() / n as f64;
    if observed == 0.0 {
        return Some((0.0, 1.0));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut extreme = 0usize;
    for _ in 0..iterations {
        let mut sum = 0.0;
        for _ in 0..n {
            sum += d[rng.random_range(0..n)];
        }
        if (sum / n as f64 - observed).abs() >= observed.abs() {
            extreme += 1;
        }
    }
    Some((observed, extreme as f64 / iterations as f64))
}

/// Holm's step-down adjustment of `p` (statsmodels `multipletests(method="holm")`), in the
/// input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        // b = 0, c = 3: 2 · (1/8) = 0.25.
        assert!((mcnemar_exact(0, 3) - 0.25).abs() < 1e-15);
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Two positive differences: only the identity flip reaches the observed sum.
        assert_eq!(randomization_exact(&[1.0, 2.0]), Some(0.5));
        assert_eq!(holm(&[0.01, 0.04, 0.03]), vec![0.03, 0.06, 0.06]);
    }

    #[test]
    fn the_bootstrap_is_seeded_and_sees_a_clear_difference() {
        let a = vec![0.0; 50];
        let b: Vec<f64> = (0..50).map(|i| 1.0 + (i % 3) as f64).collect();
        let (d, p) = paired_bootstrap(&a, &b, 1000, 7).unwrap();
        assert!((d - 1.98).abs() < 1e-12);
        assert_eq!(p, 0.0);
        assert_eq!(
            paired_bootstrap(&a, &b, 1000, 7),
            paired_bootstrap(&a, &b, 1000, 7)
        );
        assert_eq!(paired_bootstrap(&a, &a, 10, 1), Some((0.0, 1.0)));
    }
}
