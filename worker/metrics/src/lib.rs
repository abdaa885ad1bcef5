//! Paper-faithful metrics. Each metric carries an implementation version, stored with its value.

pub mod attributes;
pub mod bias;
pub mod bleu;
pub mod bootstrap;
pub mod classification;
pub mod diversity;
pub mod entailment;
pub mod generation;
pub mod ids;
pub mod mauve;
pub mod nltk;
pub mod rouge;
pub mod significance;

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
