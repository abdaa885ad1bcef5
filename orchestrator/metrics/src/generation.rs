//! Means over (hypothesis, reference) pairs of the generation metrics, the way the NorGLM
//! authors' loop computes them: a pair for which ROUGE raises (e.g. an empty hypothesis) is
//! skipped for every metric. The diversity metrics (Distinct-n, ENTR) tokenize with
//! `nltk.word_tokenize` and skip hypotheses without tokens; USR compares the kept hypotheses.

use rayon::prelude::*;
use types::MetricValue;

use super::bootstrap::Bootstrap;
use super::ids::Vocab;
use super::nltk::{MissingPunkt, word_tokenize};
use super::{bleu, diversity, rouge};

/// Whether `name` is computed from the pairs alone (not by a model of its own, as the
/// entailment ratios and MAUVE are).
pub fn from_pairs(name: &str) -> bool {
    name != "mauve" && !super::entailment::NAMES.contains(&name)
}

fn needs_tokens(name: &str) -> bool {
    name.starts_with("distinct") || name.starts_with("entr")
}

struct Scored<'a> {
    hyp: &'a str,
    rouge: rouge::RougeScores,
    bleu: bleu::BleuStats,
    /// Word ids of the hypothesis's `nltk.word_tokenize` tokens.
    tokens: Option<Vec<u32>>,
}

/// What [`text_metrics`] computed.
#[derive(Debug, Clone)]
pub struct TextMetrics {
    /// The metrics.
    pub metrics: Vec<MetricValue>,
    /// Pairs skipped because ROUGE cannot score them.
    pub skipped: usize,
    /// Why token-based metrics were left out (the Punkt model is missing), if they were.
    pub missing: Option<MissingPunkt>,
}

/// The metrics of `wanted` over `pairs`. Without NLTK's Punkt model the token-based metrics
/// (Distinct-n, ENTR) are left out and `missing` says how to install it.
pub fn text_metrics<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    wanted: &[String],
    boot: &Bootstrap,
) -> TextMetrics {
    let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    let missing = if wanted.iter().any(|w| needs_tokens(w)) {
        word_tokenize("").err()
    } else {
        None
    };
    let tokenize = wanted.iter().any(|w| needs_tokens(w)) && missing.is_none();
    let scored: Vec<Option<Scored>> = pairs
        .par_iter()
        .map(|&(h, r)| {
            let rouge = rouge::rouge(h, r).ok()?;
            Some(Scored {
                hyp: h,
                rouge,
                bleu: bleu::stats(h, r),
                tokens: tokenize.then(|| {
                    let words = word_tokenize(h).unwrap_or_default();
                    Vocab::default().ids(words.iter().map(String::as_str))
                }),
            })
        })
        .collect();
    let skipped = scored.iter().filter(|s| s.is_none()).count();
    let kept: Vec<Scored> = scored.into_iter().flatten().collect();
    let values = |f: &dyn Fn(&Scored) -> f64| -> Vec<f64> { kept.iter().map(f).collect() };
    let with_tokens: Vec<&Vec<u32>> = kept
        .iter()
        .filter_map(|s| s.tokens.as_ref().filter(|t| !t.is_empty()))
        .collect();
    let entr: Vec<f64> = with_tokens
        .iter()
        .map(|t| diversity::entr_as_implemented(t))
        .collect();
    let plain = |name: &str, value: f64, n: usize, version: i32| MetricValue {
        name: name.to_string(),
        value,
        ci_low: None,
        ci_high: None,
        n: n as i64,
        version,
    };
    let mut out = Vec::new();
    for name in wanted {
        if needs_tokens(name) && !tokenize {
            continue;
        }
        let n_of = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
        };
        let m = match name.as_str() {
            "bleu" => boot.mean_metric(name, &values(&|s| bleu::score(&s.bleu)), bleu::VERSION),
            // Corpus BLEU is not a mean over samples: no interval.
            "bleu_corpus" => {
                let mut total = bleu::BleuStats::default();
                for s in &kept {
                    total += s.bleu;
                }
                plain(name, bleu::score(&total), kept.len(), bleu::VERSION)
            }
            "rouge_1" => boot.mean_metric(name, &values(&|s| s.rouge.rouge_1.f), rouge::VERSION),
            "rouge_2" => boot.mean_metric(name, &values(&|s| s.rouge.rouge_2.f), rouge::VERSION),
            "rouge_l" => boot.mean_metric(name, &values(&|s| s.rouge.rouge_l.f), rouge::VERSION),
            "entr" => {
                if entr.iter().any(|x| x.is_nan()) {
                    continue; // undefined for some text: the authors' mean is NaN, not stored
                }
                boot.mean_metric(name, &entr, diversity::VERSION)
            }
            "entr_valid" => {
                let valid: Vec<f64> = entr.iter().copied().filter(|x| !x.is_nan()).collect();
                boot.mean_metric(name, &valid, diversity::VERSION)
            }
            "usr" => plain(
                name,
                diversity::usr(kept.iter().map(|s| s.hyp)),
                kept.len(),
                diversity::VERSION,
            ),
            _ => {
                if let Some(n) = n_of("distinct_std_") {
                    let v: Vec<f64> = with_tokens
                        .iter()
                        .map(|t| diversity::distinct_standard(t, n))
                        .collect();
                    boot.mean_metric(name, &v, diversity::VERSION)
                } else if let Some(n) = n_of("distinct_") {
                    let v: Vec<f64> = with_tokens
                        .iter()
                        .filter_map(|t| diversity::distinct_as_implemented(t, n))
                        .collect();
                    boot.mean_metric(name, &v, diversity::VERSION)
                } else {
                    continue;
                }
            }
        };
        out.push(m);
    }
    TextMetrics {
        metrics: out,
        skipped,
        missing,
    }
}
