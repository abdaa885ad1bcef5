//! ROUGE-1/2/L as the `rouge` package (pltrdy, 1.0.x) computes `Rouge().get_scores(hyp, ref)`:
//! texts are split into "sentences" at every `.`, words at single spaces; ROUGE-N counts
//! *distinct* n-grams (`exclusive=True`), ROUGE-L is the summary-level union LCS over distinct
//! words, with the package's LCS reconstruction. Unlike `rouge_score`, nothing is stripped, so
//! æ, ø and å count.

use rustc_hash::FxHashSet as HashSet;

use super::ids::Vocab;

/// Implementation version.
pub const VERSION: i32 = 1;

/// Precision, recall and F of one ROUGE variant.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Prf {
    /// Precision.
    pub p: f64,
    /// Recall.
    pub r: f64,
    /// F1 as the package computes it: 2·p·r / (p + r + 1e-8).
    pub f: f64,
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RougeScores {
    /// ROUGE-1.
    pub rouge_1: Prf,
    /// ROUGE-2.
    pub rouge_2: Prf,
    /// ROUGE-L (summary level).
    pub rouge_l: Prf,
}

/// Why the package raises for a pair (the authors then skip the pair).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RougeError {
    /// No sentence in the hypothesis.
    #[error("Hypothesis is empty.")]
    EmptyHypothesis,
    /// No sentence in the reference.
    #[error("Reference is empty.")]
    EmptyReference,
}

fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `[" ".join(_.split()) for _ in text.split(".") if len(_) > 0]`
fn sentences(text: &str) -> Vec<String> {
    text.split('.')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split(python_space)
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn prf(hyp_count: usize, ref_count: usize, overlap: usize) -> Prf {
    let p = if hyp_count == 0 {
        0.0
    } else {
        overlap as f64 / hyp_count as f64
    };
    let r = if ref_count == 0 {
        0.0
    } else {
        overlap as f64 / ref_count as f64
    };
    Prf {
        p,
        r,
        f: 2.0 * ((p * r) / (p + r + 1e-8)),
    }
}

fn grams(w: &[u32], n: usize) -> HashSet<&[u32]> {
    if w.len() < n {
        return HashSet::default();
    }
    w.windows(n).collect()
}

fn rouge_n(hyp: &[u32], reference: &[u32], n: usize) -> Prf {
    let (h, r) = (grams(hyp, n), grams(reference, n));
    prf(h.len(), r.len(), h.intersection(&r).count())
}

/// The words of the LCS of `x` and `y`, reconstructed as the package does (ties go to `y`).
fn recon_lcs(x: &[u32], y: &[u32]) -> Vec<u32> {
    let (n, m) = (x.len(), y.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        for j in 1..=m {
            table[at(i, j)] = if x[i - 1] == y[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let (mut i, mut j) = (n, m);
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if x[i - 1] == y[j - 1] {
            out.push(x[i - 1]);
            i -= 1;
            j -= 1;
        } else if table[at(i - 1, j)] > table[at(i, j - 1)] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    out
}

/// Summary-level ROUGE-L over sentences of word ids.
fn rouge_l(hyp: &[Vec<u32>], reference: &[Vec<u32>]) -> Prf {
    let m: HashSet<u32> = reference.iter().flatten().copied().collect();
    let n: HashSet<u32> = hyp.iter().flatten().copied().collect();
    let mut union: HashSet<u32> = HashSet::default();
    for r in reference {
        for h in hyp {
            union.extend(recon_lcs(r, h));
        }
    }
    let llcs = union.len() as f64;
    let (r, p) = (llcs / m.len() as f64, llcs / n.len() as f64);
    Prf {
        p,
        r,
        f: 2.0 * ((p * r) / (p + r + 1e-8)),
    }
}

/// ROUGE-1/2/L of a hypothesis against a reference.
pub fn rouge(hyp: &str, reference: &str) -> Result<RougeScores, RougeError> {
    let (h, r) = (sentences(hyp), sentences(reference));
    if h.is_empty() {
        return Err(RougeError::EmptyHypothesis);
    }
    if r.is_empty() {
        return Err(RougeError::EmptyReference);
    }
    // Words are `sentence.split(" ")` of each sentence, as ids shared by both texts.
    let mut vocab = Vocab::default();
    let hs: Vec<Vec<u32>> = h.iter().map(|s| vocab.ids(s.split(' '))).collect();
    let rs: Vec<Vec<u32>> = r.iter().map(|s| vocab.ids(s.split(' '))).collect();
    let (hw, rw) = (hs.concat(), rs.concat());
    Ok(RougeScores {
        rouge_1: rouge_n(&hw, &rw, 1),
        rouge_2: rouge_n(&hw, &rw, 2),
        rouge_l: rouge_l(&hs, &rs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_ngrams_and_keeps_norwegian_letters() {
        let s = rouge("blåbær og blåbær", "blåbær og ost").unwrap();
        // Distinct unigrams: hyp {blåbær, og}, ref {blåbær, og, ost}.
        assert!((s.rouge_1.p - 1.0).abs() < 1e-12 && (s.rouge_1.r - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rouge("...", "x"), Err(RougeError::EmptyHypothesis));
        assert_eq!(rouge("x", ""), Err(RougeError::EmptyReference));
    }
}
