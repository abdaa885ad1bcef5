//! Diversity of generations as the NorGLM authors computed it, over `nltk.word_tokenize`
//! tokens ([`super::nltk`]):
//!
//! - `distinct_n` as implemented: len(all n-grams) / len(tokens) — it measures length, not
//!   diversity; `distinct_std_n`: unique n-grams / all n-grams, the usual definition;
//! - `entr` as implemented: for n = 1..3, p = count / number of *distinct* n-grams,
//!   H_n = −Σ p ln p (0 with at most one distinct n-gram), ENTR = (H1·H2·H3)^(1/3), undefined
//!   (NaN) when the product is negative, and a NaN poisons the mean as in the original;
//!   `entr_valid` averages the texts where it is defined;
//! - `usr`: unique generations / all generations (exact string equality).

use std::hash::Hash;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Implementation version.
pub const VERSION: i32 = 1;

/// The authors' distinct-n of a token list (`None` for no tokens).
pub fn distinct_as_implemented<T>(tokens: &[T], n: usize) -> Option<f64> {
    if tokens.is_empty() {
        return None;
    }
    Some((tokens.len() + 1).saturating_sub(n) as f64 / tokens.len() as f64)
}

/// The usual distinct-n: unique n-grams over all n-grams (0 without n-grams). Tokens may be
/// strings or ids standing for them.
pub fn distinct_standard<T: Hash + Eq>(tokens: &[T], n: usize) -> f64 {
    if tokens.len() < n {
        return 0.0;
    }
    let all = tokens.len() + 1 - n;
    let unique: HashSet<&[T]> = tokens.windows(n).collect();
    unique.len() as f64 / all as f64
}

/// The authors' ENTR of a token list (NaN when undefined). Tokens may be strings or ids.
pub fn entr_as_implemented<T: Hash + Eq>(tokens: &[T]) -> f64 {
    let mut product = 1.0f64;
    for n in 1..=3 {
        let mut counts: HashMap<&[T], usize> = HashMap::default();
        for g in tokens.windows(n) {
            *counts.entry(g).or_insert(0) += 1;
        }
        let d = counts.len() as f64;
        let h = if counts.len() <= 1 {
            0.0
        } else {
            -counts
                .values()
                .map(|&c| (c as f64 / d) * (c as f64 / d).ln())
                .sum::<f64>()
        };
        product *= h;
    }
    if product < 0.0 {
        f64::NAN
    } else {
        product.powf(1.0 / 3.0)
    }
}

/// Unique generations over all generations.
pub fn usr<'a>(texts: impl IntoIterator<Item = &'a str>) -> f64 {
    let mut all = 0usize;
    let mut unique = HashSet::default();
    for t in texts {
        all += 1;
        unique.insert(t);
    }
    if all == 0 {
        f64::NAN
    } else {
        unique.len() as f64 / all as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_authors_definitions_and_their_quirks() {
        let t = toks("a b a b c");
        assert_eq!(distinct_as_implemented(&t, 2), Some(0.8));
        assert_eq!(distinct_standard(&t, 2), 0.75);
        assert_eq!(distinct_as_implemented::<u32>(&[], 1), None);
        // "a a a b": unigram counts 3 and 1 over 2 distinct → H1 < 0 → undefined.
        assert!(entr_as_implemented(&toks("a a a b")).is_nan());
        assert_eq!(entr_as_implemented(&toks("a a a")), 0.0);
        assert!((usr(["x", "y", "x"]) - 2.0 / 3.0).abs() < 1e-12);
    }
}
