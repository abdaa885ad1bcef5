//! BLEU as sacrebleu 2.x computes it with its defaults (`BLEU()`): the `13a` tokenizer, `exp`
//! smoothing, no lowercasing, max order 4, no effective order; sentence BLEU is what
//! `BLEU().sentence_score(hyp, [ref]).score` returns, corpus BLEU what `corpus_score` returns.

use rustc_hash::FxHashMap as HashMap;

use super::ids::Vocab;

/// Implementation version.
pub const VERSION: i32 = 1;

const MAX_ORDER: usize = 4;

fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Tokens of a segment under sacrebleu's `13a` tokenizer (mteval-v13a), after `rstrip()`.
pub fn tokenize_13a(segment: &str) -> Vec<String> {
    let mut line = segment.trim_end_matches(python_space).to_string();
    line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    // 1. Most ASCII punctuation and symbols become their own tokens.
    let symbol =
        |c: char| matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/');
    let mut s1 = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if symbol(c) {
            s1.extend([' ', c, ' ']);
        } else {
            s1.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let period_comma = |c: char| c == '.' || c == ',';
    // 2. Period and comma unless preceded by a digit: `([^0-9])([\.,])` → `\1 \2 `.
    let mut s2 = Vec::with_capacity(s1.len() + 16);
    let mut i = 0;
    while i < s1.len() {
        if i + 1 < s1.len() && !digit(s1[i]) && period_comma(s1[i + 1]) {
            s2.extend([s1[i], ' ', s1[i + 1], ' ']);
            i += 2;
        } else {
            s2.push(s1[i]);
            i += 1;
        }
    }
    // 3. Period and comma unless followed by a digit: `([\.,])([^0-9])` → ` \1 \2`.
    let mut s3 = Vec::with_capacity(s2.len() + 16);
    let mut i = 0;
    while i < s2.len() {
        if i + 1 < s2.len() && period_comma(s2[i]) && !digit(s2[i + 1]) {
            s3.extend([' ', s2[i], ' ', s2[i + 1]]);
            i += 2;
        } else {
            s3.push(s2[i]);
            i += 1;
        }
    }
    // 4. Dash after a digit: `([0-9])(-)` → `\1 \2 `.
    let mut s4 = Vec::with_capacity(s3.len() + 16);
    let mut i = 0;
    while i < s3.len() {
        if i + 1 < s3.len() && digit(s3[i]) && s3[i + 1] == '-' {
            s4.extend([s3[i], ' ', '-', ' ']);
            i += 2;
        } else {
            s4.push(s3[i]);
            i += 1;
        }
    }
    let text: String = s4.into_iter().collect();
    text.split(python_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sufficient statistics of one segment: lengths, matching and total n-grams per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BleuStats {
    /// Hypothesis length in tokens.
    pub hyp_len: usize,
    /// Reference length in tokens.
    pub ref_len: usize,
    /// Clipped n-gram matches, orders 1..4.
    pub correct: [usize; MAX_ORDER],
    /// Hypothesis n-grams, orders 1..4.
    pub total: [usize; MAX_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: Self) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

fn ngrams(tokens: &[u32]) -> HashMap<&[u32], usize> {
    let mut m = HashMap::default();
    for n in 1..=MAX_ORDER {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// Tokens of a segment under sacrebleu's `intl` tokenizer (mteval-v14 international), after
/// `rstrip()`: punctuation split off unless between digits, symbols split off.
pub fn tokenize_intl(segment: &str) -> Vec<String> {
    use std::sync::OnceLock;
    static RES: OnceLock<Option<[fancy_regex::Regex; 3]>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        Some([
            fancy_regex::Regex::new(r"(\P{N})(\p{P})").ok()?,
            fancy_regex::Regex::new(r"(\p{P})(\P{N})").ok()?,
            fancy_regex::Regex::new(r"(\p{S})").ok()?,
        ])
    });
    let mut line = segment.trim_end_matches(python_space).to_string();
    if let Some([a, b, c]) = res {
        line = a.replace_all(&line, "${1} ${2} ").into_owned();
        line = b.replace_all(&line, " ${1} ${2}").into_owned();
        line = c.replace_all(&line, " ${1} ").into_owned();
    }
    line.split(python_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Statistics of a hypothesis against one reference.
pub fn stats(hyp: &str, reference: &str) -> BleuStats {
    stats_of_tokens(tokenize_13a(hyp), tokenize_13a(reference))
}

/// Statistics of tokenized texts.
fn stats_of_tokens(ht: Vec<String>, rt: Vec<String>) -> BleuStats {
    let mut vocab = Vocab::default();
    let h = vocab.ids(ht.iter().map(String::as_str));
    let r = vocab.ids(rt.iter().map(String::as_str));
    let (hn, rn) = (ngrams(&h), ngrams(&r));
    let mut s = BleuStats {
        hyp_len: h.len(),
        ref_len: r.len(),
        ..BleuStats::default()
    };
    for (g, &count) in &hn {
        let n = g.len() - 1;
        s.total[n] += count;
        if let Some(&rc) = rn.get(g) {
            s.correct[n] += count.min(rc);
        }
    }
    s
}

fn my_log(p: f64) -> f64 {
    if p > 0.0 { p.ln() } else { -9_999_999_999.0 }
}

/// BLEU (0–100) from statistics, with `exp` smoothing.
pub fn score(s: &BleuStats) -> f64 {
    let bp = if s.hyp_len < s.ref_len {
        if s.hyp_len > 0 {
            (1.0 - s.ref_len as f64 / s.hyp_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    if s.correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let mut precisions = [0.0f64; MAX_ORDER];
    let mut smooth = 1.0;
    for (p, (&correct, &total)) in precisions.iter_mut().zip(s.correct.iter().zip(&s.total)) {
        if total == 0 {
            break;
        }
        *p = if correct == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total as f64)
        } else {
            100.0 * correct as f64 / total as f64
        };
    }
    bp * (precisions.iter().map(|&p| my_log(p)).sum::<f64>() / MAX_ORDER as f64).exp()
}

/// Sentence BLEU of one pair.
pub fn sentence_bleu(hyp: &str, reference: &str) -> f64 {
    score(&stats(hyp, reference))
}

/// Corpus BLEU of pairs under the `intl` tokenizer, as `sacrebleu.corpus_bleu(hyps, [refs],
/// tokenize="intl")` (the T5-style BLEU of NorEval's TruthfulQA).
pub fn corpus_bleu_intl<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut total = BleuStats::default();
    for (h, r) in pairs {
        total += stats_of_tokens(tokenize_intl(h), tokenize_intl(r));
    }
    score(&total)
}

/// Corpus BLEU of pairs (statistics summed before scoring).
pub fn corpus_bleu<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut total = BleuStats::default();
    for (h, r) in pairs {
        total += stats(h, r);
    }
    score(&total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_like_mteval_13a() {
        assert_eq!(
            tokenize_13a("Det koster 49,90 kr. (ca. 5€) – «bra»!"),
            [
                "Det", "koster", "49,90", "kr", ".", "(", "ca", ".", "5€", ")", "–", "«bra»", "!"
            ]
        );
        assert_eq!(
            tokenize_13a("1990-tallet, 3.5 og a.b"),
            ["1990", "-", "tallet", ",", "3.5", "og", "a", ".", "b"]
        );
    }

    #[test]
    fn identical_sentences_score_100_and_disjoint_ones_0() {
        let s = "Norge er et land i Nord-Europa med lange kyster.";
        assert!((sentence_bleu(s, s) - 100.0).abs() < 1e-9);
        assert_eq!(sentence_bleu("helt annet", s), 0.0);
    }

    // sacrebleu 2.6: `TokenizerV14International()(...)` and `corpus_bleu(hyps, [refs],
    // tokenize="intl").score`.
    #[test]
    fn intl_tokenizer_and_bleu_equal_sacrebleu() {
        assert_eq!(
            tokenize_intl("Det koster 4,50 kr. (ca. 5€) – «bra»!").join(" "),
            "Det koster 4,50 kr . ( ca . 5 € ) – « bra » !"
        );
        let got = corpus_bleu_intl([
            ("Det koster 4,50 kr. (ca.)", "Det koster 4,50 kroner."),
            ("Ja!", "Ja, det!"),
        ]);
        assert!((got - 19.490217756577092).abs() < 1e-9, "{got}");
    }
}
