//! ROUGE as Google's `rouge_score` package computes it (`RougeScorer(types)` with its default
//! tokenizer, no stemming): text lowercased, every run of characters outside `[a-z0-9]` a
//! separator (so letters such as æ, ø and å separate words, as there); ROUGE-N from n-gram
//! overlap, ROUGE-Lsum from the union LCS of newline-separated sentences. F-measures in 0–1.
//! This is not the `rouge` package the NorGLM authors used ([`crate::rouge`]): NorEval's
//! task files score with this one.

use std::collections::HashMap;

/// `tokenize.tokenize(text, None)`.
pub fn tokenize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn fmeasure(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// ROUGE-N F-measure of `prediction` against `target`.
pub fn rouge_n(target: &str, prediction: &str, n: usize) -> f64 {
    let grams = |t: &[String]| {
        let mut m: HashMap<Vec<String>, usize> = HashMap::new();
        for w in t.windows(n) {
            *m.entry(w.to_vec()).or_insert(0) += 1;
        }
        m
    };
    let (t, p) = (grams(&tokenize(target)), grams(&tokenize(prediction)));
    let hits: usize = t
        .iter()
        .map(|(g, c)| (*c).min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let (tn, pn): (usize, usize) = (t.values().sum(), p.values().sum());
    fmeasure(
        hits as f64 / pn.max(1) as f64,
        hits as f64 / tn.max(1) as f64,
    )
}

fn lcs_table(r: &[String], c: &[String]) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0; c.len() + 1]; r.len() + 1];
    for i in 1..=r.len() {
        for j in 1..=c.len() {
            t[i][j] = if r[i - 1] == c[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

/// One LCS of `r` and `c`, as indices into `r`, read out as `_backtrack_norec` reads it.
fn lcs_indices(r: &[String], c: &[String]) -> Vec<usize> {
    let t = lcs_table(r, c);
    let (mut i, mut j) = (r.len(), c.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if r[i - 1] == c[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    out.reverse();
    out
}

/// ROUGE-Lsum F-measure: sentences are the non-empty lines.
pub fn rouge_lsum(target: &str, prediction: &str) -> f64 {
    let sents = |t: &str| -> Vec<Vec<String>> {
        t.split('\n')
            .filter(|s| !s.is_empty())
            .map(tokenize)
            .collect()
    };
    let (refs, cands) = (sents(target), sents(prediction));
    if refs.is_empty() || cands.is_empty() {
        return 0.0;
    }
    let m: usize = refs.iter().map(Vec::len).sum();
    let n: usize = cands.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return 0.0;
    }
    let mut count_r: HashMap<&str, i64> = HashMap::new();
    let mut count_c: HashMap<&str, i64> = HashMap::new();
    for t in refs.iter().flatten() {
        *count_r.entry(t).or_insert(0) += 1;
    }
    for t in cands.iter().flatten() {
        *count_c.entry(t).or_insert(0) += 1;
    }
    let mut hits = 0usize;
    for r in &refs {
        let mut union: Vec<usize> = cands.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let t = r[i].as_str();
            let (cc, cr) = (
                count_c.get(t).copied().unwrap_or(0),
                count_r.get(t).copied().unwrap_or(0),
            );
            if cc > 0 && cr > 0 {
                hits += 1;
                count_c.insert(t, cc - 1);
                count_r.insert(t, cr - 1);
            }
        }
    }
    fmeasure(hits as f64 / n as f64, hits as f64 / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // rouge_score 0.1.2: `RougeScorer(["rouge1", "rouge2", "rougeLsum"]).score(t, p)`
    // fmeasures for these pairs.
    #[test]
    fn equals_rouge_score() {
        let cases = [
            (
                "Oslo er hovedstaden.\nDen ligger i øst.",
                "Hovedstaden er Oslo.\nDet ligger i sør.",
                EXPECTED[0],
            ),
            (
                "Sild og makrell.",
                "Makrell, ikke sild og laks",
                EXPECTED[1],
            ),
            ("", "Noe", EXPECTED[2]),
        ];
        for (t, p, [r1, r2, rl]) in cases {
            assert!(
                (rouge_n(t, p, 1) - r1).abs() < 1e-12,
                "{t} | {p}: rouge1 {}",
                rouge_n(t, p, 1)
            );
            assert!(
                (rouge_n(t, p, 2) - r2).abs() < 1e-12,
                "{t} | {p}: rouge2 {}",
                rouge_n(t, p, 2)
            );
            assert!(
                (rouge_lsum(t, p) - rl).abs() < 1e-12,
                "{t} | {p}: rougeLsum {}",
                rouge_lsum(t, p)
            );
        }
    }

    const EXPECTED: [[f64; 3]; 3] = [
        [0.6666666666666666, 0.15384615384615383, 0.39999999999999997],
        [0.7499999999999999, 0.3333333333333333, 0.5],
        [0.0, 0.0, 0.0],
    ];
}
