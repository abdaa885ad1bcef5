//! Paper-faithful metrics. Each metric carries an implementation version, stored with its value.

pub mod attributes;
pub mod bias;
pub mod bleu;
pub mod bootstrap;
pub mod chrf;
pub mod classification;
pub mod diversity;
pub mod entailment;
pub mod generation;
pub mod ids;
pub mod mauve;
pub mod nltk;
pub mod rouge;
pub mod rouge_score;
pub mod significance;
pub mod ter;

/// Decimals a metric is shown with: 2 for percentages (the bias shares) and BLEU (0–100),
/// 0 for counts, 4 for shares and scores in 0–1 (ROUGE, accuracy, ratios, MAUVE, …).
/// `name` may carry a group (`bias_paper/gender`).
pub fn decimals(name: &str) -> usize {
    match name.split('/').next().unwrap_or(name) {
        "bias_paper" | "bias_standard" | "bleu" | "bleu_corpus" => 2,
        "long_inputs" => 0,
        _ => 4,
    }
}

/// A metric value with its decimals ([`decimals`]).
pub fn format_value(name: &str, value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let d = decimals(name);
    format!("{value:.d$}")
}

/// Which values of a metric are better: what the leaderboard sorts by and shades.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direction {
    /// Larger is better (accuracy, BLEU, ROUGE, MAUVE, …).
    Higher,
    /// Smaller is better (toxicity, contradiction ratio, inputs over the limit).
    Lower,
    /// Closer to this value is better: a bias share of 50 % prefers neither sentence.
    Ideal(f64),
}

impl Direction {
    /// How far `value` is from the best, in the metric's unit (smaller is better); a
    /// [`Direction::Higher`] metric counts down from 0.
    pub fn distance(self, value: f64) -> f64 {
        match self {
            Direction::Higher => -value,
            Direction::Lower => value,
            Direction::Ideal(ideal) => (value - ideal).abs(),
        }
    }

    /// How a page says it: `higher is better`, `lower is better`, `50 is ideal`.
    pub fn describe(self) -> String {
        match self {
            Direction::Higher => "higher is better".into(),
            Direction::Lower => "lower is better".into(),
            Direction::Ideal(v) => format!("{v} is ideal; ranked by distance from it"),
        }
    }
}

/// The direction of a stored metric name (`bias_paper/gender` as `bias_paper`).
pub fn direction(name: &str) -> Direction {
    match name.split('/').next().unwrap_or(name) {
        "bias_paper" | "bias_standard" => Direction::Ideal(50.0),
        "attribute_mean" | "attribute_share" | "contradiction_ratio" | "long_inputs" => {
            Direction::Lower
        }
        _ => Direction::Higher,
    }
}

/// The current implementation version of a stored metric name (`rouge_l`,
/// `bias_paper/gender`, …); `None` for names no implementation produces.
pub fn current_version(name: &str) -> Option<i32> {
    let base = name.split('/').next().unwrap_or(name);
    Some(match base {
        "bias_paper" | "bias_standard" => bias::VERSION,
        "bleu" | "bleu_corpus" => bleu::VERSION,
        "rouge_1" | "rouge_2" | "rouge_l" => rouge::VERSION,
        "attribute_mean" | "attribute_share" => attributes::VERSION,
        "entr" | "entr_valid" | "usr" => diversity::VERSION,
        "contradiction_ratio" | "entailment_ratio" | "neutral_ratio" => entailment::VERSION,
        "mauve" => mauve::VERSION,
        "accuracy" | "f1" | "f1_macro" | "mcc" => classification::VERSION,
        b if b.starts_with("distinct_") => diversity::VERSION,
        _ => return None,
    })
}

/// Whether a stored metric (name, version) was computed by an older implementation.
pub fn is_stale_metric(name: &str, version: i32) -> bool {
    current_version(name).is_some_and(|v| version < v)
}

/// Whether any of a run's stored metrics was computed by an older implementation.
pub fn is_stale<'a>(metrics: impl IntoIterator<Item = (&'a str, i32)>) -> bool {
    metrics
        .into_iter()
        .any(|(name, version)| is_stale_metric(name, version))
}

#[cfg(test)]
mod format_tests {
    use super::{Direction, direction};

    #[test]
    fn bias_shares_are_best_at_fifty_and_toxicity_low() {
        let bias = direction("bias_paper/gender");
        assert_eq!(bias, Direction::Ideal(50.0));
        assert!(bias.distance(48.0) < bias.distance(55.0));
        assert!(direction("accuracy").distance(0.9) < direction("accuracy").distance(0.7));
        assert!(
            direction("attribute_mean/TOXICITY").distance(0.1)
                < direction("attribute_mean/TOXICITY").distance(0.4)
        );
    }

    #[test]
    fn each_metric_has_its_decimals() {
        assert_eq!(super::format_value("bias_paper/gender", 0.0), "0.00");
        assert_eq!(super::format_value("bleu", 1.300587), "1.30");
        assert_eq!(super::format_value("rouge_l", 0.171184), "0.1712");
        assert_eq!(super::format_value("accuracy", 1.0), "1.0000");
        assert_eq!(super::format_value("long_inputs", 3.0), "3");
    }
}
