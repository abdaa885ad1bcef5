//! Means over (hypothesis, reference) pairs of the generation metrics, the way the NorGLM
//! authors' loop computes them: a pair for which ROUGE raises (e.g. an empty hypothesis) is
//! skipped for every metric.

use orchestrator::store::MetricValue;

use super::{bleu, rouge};

/// The metrics of `wanted` over `pairs`, and how many pairs were skipped.
pub fn text_metrics<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    wanted: &[String],
) -> (Vec<MetricValue>, usize) {
    let mut kept: Vec<(&str, &str, rouge::RougeScores)> = Vec::new();
    let mut skipped = 0;
    for (h, r) in pairs {
        match rouge::rouge(h, r) {
            Ok(s) => kept.push((h, r, s)),
            Err(_) => skipped += 1,
        }
    }
    let n = kept.len() as i64;
    let mean = |f: &dyn Fn(&(&str, &str, rouge::RougeScores)) -> f64| {
        if kept.is_empty() {
            f64::NAN
        } else {
            kept.iter().map(f).sum::<f64>() / kept.len() as f64
        }
    };
    let value = |name: &str, v: f64, version: i32| MetricValue {
        name: name.to_string(),
        value: v,
        ci_low: None,
        ci_high: None,
        n,
        version,
    };
    let mut out = Vec::new();
    for name in wanted {
        out.push(match name.as_str() {
            "bleu" => value(
                name,
                mean(&|p| bleu::sentence_bleu(p.0, p.1)),
                bleu::VERSION,
            ),
            "bleu_corpus" => value(
                name,
                bleu::corpus_bleu(kept.iter().map(|p| (p.0, p.1))),
                bleu::VERSION,
            ),
            "rouge_1" => value(name, mean(&|p| p.2.rouge_1.f), rouge::VERSION),
            "rouge_2" => value(name, mean(&|p| p.2.rouge_2.f), rouge::VERSION),
            "rouge_l" => value(name, mean(&|p| p.2.rouge_l.f), rouge::VERSION),
            _ => continue,
        });
    }
    (out, skipped)
}
