//! Entailment ratio as the NorGLM authors computed it: an NLI classifier (`NorGLM/Entailment`,
//! a BERT sequence classifier) reads `f"{source} [SEP] {hypothesis}"`, truncated to its
//! context (512 tokens); the argmax per pair is the label (0 contradiction, 1 entailment,
//! 2 neutral); the metrics are the share of pairs with each label.

use candle_core::DType;
use orchestrator::store::MetricValue;

use super::bootstrap::Bootstrap;
use crate::engine::bert::BertClassifier;
use crate::engine::{EngineError, Result};

/// Implementation version.
pub const VERSION: i32 = 1;

/// Metric names by label index, in the authors' label order.
pub const NAMES: [&str; 3] = ["contradiction_ratio", "entailment_ratio", "neutral_ratio"];

/// Rows per forward pass.
const BATCH: usize = 8;

/// Check that a classifier has the authors' three labels in their order (generic `LABEL_i`
/// names are taken to follow it).
pub fn check_labels(clf: &BertClassifier) -> Result<()> {
    let ok = clf.labels.len() == 3
        && clf.labels.iter().enumerate().all(|(i, l)| {
            let l = l.to_lowercase();
            l == format!("label_{i}") || NAMES[i].starts_with(&l)
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::Config {
            path: "config.json".into(),
            message: format!(
                "the NLI classifier's labels are {:?}; the entailment ratio needs 3 labels in the order contradiction, entailment, neutral",
                clf.labels
            ),
        })
    }
}

/// The argmax label of every (source, hypothesis) pair, batched by length.
pub fn labels(clf: &BertClassifier, pairs: &[(&str, &str)]) -> Result<Vec<usize>> {
    let ids = pairs
        .iter()
        .map(|(s, h)| clf.encode(&format!("{s} [SEP] {h}")))
        .collect::<Result<Vec<_>>>()?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut out = vec![0usize; ids.len()];
    for chunk in order.chunks(BATCH) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
        let argmax: Vec<u32> = clf
            .logits(&rows)
            .and_then(|l| l.to_dtype(DType::F32)?.argmax(1)?.to_vec1())
            .map_err(EngineError::from)?;
        for (&i, a) in chunk.iter().zip(argmax) {
            out[i] = a as usize;
        }
    }
    Ok(out)
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
