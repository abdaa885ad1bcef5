//! Seeded percentile-bootstrap confidence intervals for metrics that are means over samples.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use types::MetricValue;

/// How intervals are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Resamples (0: no intervals).
    pub iterations: usize,
    /// Seed of the resampling.
    pub seed: u64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            iterations: 1000,
            seed: 0,
            level: 0.95,
        }
    }
}

impl Bootstrap {
    /// The default level and seed with `iterations` resamples (0 turns intervals off).
    pub fn with_iterations(iterations: usize) -> Bootstrap {
        Bootstrap {
            iterations,
            ..Bootstrap::default()
        }
    }

    /// The percentile interval of the mean of `values` (numpy's linear interpolation).
    pub fn mean_interval(&self, values: &[f64]) -> Option<(f64, f64)> {
        let n = values.len();
        if self.iterations == 0 || n < 2 {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut means: Vec<f64> = (0..self.iterations)
            .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
            .collect();
        means.sort_by(f64::total_cmp);
        let tail = (1.0 - self.level) / 2.0;
        Some((percentile(&means, tail), percentile(&means, 1.0 - tail)))
    }

    /// A metric that is the mean of `values`, with its interval.
    pub fn mean_metric(&self, name: &str, values: &[f64], version: i32) -> MetricValue {
        let value = if values.is_empty() {
            f64::NAN
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        let ci = self.mean_interval(values);
        MetricValue {
            name: name.to_string(),
            value,
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
            n: values.len() as i64,
            version,
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_seeded_and_contain_the_mean() {
        let values: Vec<f64> = (0..200)
            .map(|i| if i % 3 == 0 { 100.0 } else { 0.0 })
            .collect();
        let b = Bootstrap::default();
        let m = b.mean_metric("x", &values, 1);
        let (lo, hi) = (m.ci_low.unwrap(), m.ci_high.unwrap());
        assert!(lo < m.value && m.value < hi, "{lo} {} {hi}", m.value);
        assert!(hi - lo > 5.0 && hi - lo < 20.0);
        assert_eq!(
            b.mean_metric("x", &values, 1),
            m,
            "same seed, same interval"
        );
        let off = Bootstrap { iterations: 0, ..b };
        assert_eq!(off.mean_metric("x", &values, 1).ci_low, None);
    }
}
