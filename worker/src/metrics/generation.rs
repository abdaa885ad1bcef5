//! Means over (hypothesis, reference) pairs of the generation metrics, the way the NorGLM
//! authors' loop computes them: a pair for which ROUGE raises (e.g. an empty hypothesis) is
//! skipped for every metric.

use orchestrator::store::MetricValue;

use super::bootstrap::Bootstrap;
use super::{bleu, rouge};

/// The metrics of `wanted` over `pairs`, and how many pairs were skipped.
pub fn text_metrics<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    wanted: &[String],
    boot: &Bootstrap,
) -> (Vec<MetricValue>, usize) {
    let mut kept: Vec<(&str, &str, rouge::RougeScores)> = Vec::new();
    let mut skipped = 0;
    for (h, r) in pairs {
        match rouge::rouge(h, r) {
            Ok(s) => kept.push((h, r, s)),
            Err(_) => skipped += 1,
        }
    }
    let values = |f: &dyn Fn(&(&str, &str, rouge::RougeScores)) -> f64| -> Vec<f64> {
        kept.iter().map(f).collect()
    };
    let mut out = Vec::new();
    for name in wanted {
        out.push(match name.as_str() {
            "bleu" => boot.mean_metric(
                name,
                &values(&|p| bleu::sentence_bleu(p.0, p.1)),
                bleu::VERSION,
            ),
            // Corpus BLEU is not a mean over samples: no interval.
            "bleu_corpus" => MetricValue {
                name: name.clone(),
                value: bleu::corpus_bleu(kept.iter().map(|p| (p.0, p.1))),
                ci_low: None,
                ci_high: None,
                n: kept.len() as i64,
                version: bleu::VERSION,
            },
            "rouge_1" => boot.mean_metric(name, &values(&|p| p.2.rouge_1.f), rouge::VERSION),
            "rouge_2" => boot.mean_metric(name, &values(&|p| p.2.rouge_2.f), rouge::VERSION),
            "rouge_l" => boot.mean_metric(name, &values(&|p| p.2.rouge_l.f), rouge::VERSION),
            _ => continue,
        });
    }
    (out, skipped)
}
