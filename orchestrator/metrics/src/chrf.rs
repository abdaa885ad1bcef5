//! chrF (Popović, 2015) as sacrebleu 2 computes it by default (`CHRF()`: character n-grams of
//! orders 1–6 with whitespace removed, β = 2, no word n-grams), at corpus level: each order's
//! hypothesis, reference and matching n-gram counts summed over the segments, then the mean
//! precision and recall over the orders both sides have, combined into F-β (0–100).

use std::collections::HashMap;

/// sacrebleu's `CHAR_ORDER`.
const ORDER: usize = 6;
/// sacrebleu's `BETA`.
const BETA: f64 = 2.0;

/// `[hyp, ref, match]` counts per order.
type Stats = [[usize; 3]; ORDER];

fn char_ngrams(text: &str, n: usize) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    let starts: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    for w in starts.windows(n + 1) {
        *out.entry(&text[w[0]..w[n]]).or_insert(0) += 1;
    }
    out
}

fn segment(hyp: &str, reference: &str) -> Stats {
    let strip = |s: &str| s.split_whitespace().collect::<String>();
    let (h, r) = (strip(hyp), strip(reference));
    let mut stats = [[0; 3]; ORDER];
    for (n, s) in stats.iter_mut().enumerate() {
        let (hn, rn) = (char_ngrams(&h, n + 1), char_ngrams(&r, n + 1));
        // sacrebleu counts no hypothesis n-grams of an order the reference has none of.
        s[0] = if rn.is_empty() { 0 } else { hn.values().sum() };
        s[1] = rn.values().sum();
        s[2] = hn
            .iter()
            .map(|(g, c)| rn.get(g).map_or(0, |rc| (*c).min(*rc)))
            .sum();
    }
    stats
}

fn f_score(stats: &Stats) -> f64 {
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective) = (0.0, 0.0, 0usize);
    for &[n_hyp, n_ref, n_match] in stats {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective += 1;
        }
    }
    if effective == 0 {
        return 0.0;
    }
    avg_prec /= effective as f64;
    avg_rec /= effective as f64;
    if avg_prec + avg_rec == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)
}

/// Corpus chrF of (hypothesis, reference) pairs, as `sacrebleu.corpus_chrf(hyps, [refs])`.
pub fn corpus_chrf<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut total: Stats = [[0; 3]; ORDER];
    for (h, r) in pairs {
        for (t, s) in total.iter_mut().zip(segment(h, r)) {
            for k in 0..3 {
                t[k] += s[k];
            }
        }
    }
    f_score(&total)
}

#[cfg(test)]
mod tests {
    use super::*;

    // sacrebleu 2.6: `sacrebleu.corpus_chrf(hyps, [refs]).score` for these pairs.
    #[test]
    fn equals_sacrebleu() {
        let pairs = [
            ("Jeg liker kaffe.", "Jeg liker kaffe."),
            ("Hvor er stasjon?", "Hvor er stasjonen?"),
            ("Det snør i dag", "Det regner i dag."),
            ("", "Tom er trøtt."),
            ("Vet ikke", "56"),
        ];
        let got = corpus_chrf(pairs.iter().copied());
        assert!((got - CHRF_EXPECTED).abs() < 1e-9, "{got}");
    }

    const CHRF_EXPECTED: f64 = 59.37604592222062;
}
