//! Entailment ratio as the NorGLM authors computed it: an NLI classifier (`NorGLM/Entailment`,
//! a BERT sequence classifier) reads `f"{source} [SEP] {hypothesis}"`, truncated to its
//! context (512 tokens); the argmax per pair is the label (0 contradiction, 1 entailment,
//! 2 neutral); the metrics are the share of pairs with each label.

use types::MetricValue;

use super::bootstrap::Bootstrap;

/// Implementation version.
pub const VERSION: i32 = 1;

/// Metric names by label index, in the authors' label order.
pub const NAMES: [&str; 3] = ["contradiction_ratio", "entailment_ratio", "neutral_ratio"];

/// An NLI classifier; the engine implements it for BERT sequence classifiers.
pub trait NliClassifier {
    /// Why classification failed.
    type Error;
    /// The classifier's label names, by index.
    fn label_names(&self) -> &[String];
    /// The argmax label index of each input text.
    fn classify(&self, texts: &[String]) -> Result<Vec<usize>, Self::Error>;
}

/// A classifier whose labels are not the authors' three in their order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the NLI classifier's labels are {0:?}; the entailment ratio needs 3 labels in the order contradiction, entailment, neutral"
)]
pub struct LabelOrderError(pub Vec<String>);

/// Check that a classifier has the authors' three labels in their order (generic `LABEL_i`
/// names are taken to follow it).
pub fn check_labels(labels: &[String]) -> Result<(), LabelOrderError> {
    let ok = labels.len() == 3
        && labels.iter().enumerate().all(|(i, l)| {
            let l = l.to_lowercase();
            l == format!("label_{i}") || NAMES[i].starts_with(&l)
        });
    if ok {
        Ok(())
    } else {
        Err(LabelOrderError(labels.to_vec()))
    }
}

/// The label of every (source, hypothesis) pair, read as the authors wrote it:
/// `"{source} [SEP] {hypothesis}"`.
pub fn labels<C: NliClassifier>(clf: &C, pairs: &[(&str, &str)]) -> Result<Vec<usize>, C::Error> {
    let texts: Vec<String> = pairs
        .iter()
        .map(|(s, h)| format!("{s} [SEP] {h}"))
        .collect();
    clf.classify(&texts)
}

/// The share of each label, with bootstrap intervals.
pub fn shares(labels: &[usize], boot: &Bootstrap) -> Vec<MetricValue> {
    NAMES
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let hits: Vec<f64> = labels.iter().map(|&l| f64::from(l == k)).collect();
            boot.mean_metric(name, &hits, VERSION)
        })
        .collect()
}
