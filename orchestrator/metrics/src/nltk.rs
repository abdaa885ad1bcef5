//! `nltk.word_tokenize(text)` (language `english`, NLTK 3.10): Punkt sentence splitting with
//! NLTK's pretrained English parameters, then NLTK's improved Treebank word tokenizer on each
//! sentence. The NorGLM authors tokenized with it for Distinct-n and ENTR, so the metrics are
//! reproduced only with the same tokens.
//!
//! The Punkt parameters (`punkt_tab/english`) are NLTK data, read at run time from the places
//! NLTK looks: the directories the program names first ([`search_first`]: the binary gives
//! `$NLTK_DATA` and `~/nltk_data`), then the system's (`/usr/share/nltk_data`, …);
//! `tools/reference/fetch_punkt.py` installs them without network access to GitHub.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use fancy_regex::Regex;

/// Why the tokenizer cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "NLTK's Punkt model `punkt_tab/english` was not found (looked in {searched})\n  fix: run `python3 tools/reference/fetch_punkt.py` (installs it into ~/nltk_data) or `python -m nltk.downloader punkt_tab`, or set NLTK_DATA"
)]
pub struct MissingPunkt {
    /// The directories searched.
    pub searched: String,
}

const ORTHO_BEG_UC: u32 = 1 << 1;
const ORTHO_MID_UC: u32 = 1 << 2;
const ORTHO_UNK_UC: u32 = 1 << 3;
const ORTHO_BEG_LC: u32 = 1 << 4;
const ORTHO_MID_LC: u32 = 1 << 5;
const ORTHO_UNK_LC: u32 = 1 << 6;
const ORTHO_UC: u32 = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
const ORTHO_LC: u32 = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/// Punkt's learned parameters.
#[derive(Debug, Default)]
struct Params {
    abbrev_types: HashSet<String>,
    collocations: HashSet<(String, String)>,
    sent_starters: HashSet<String>,
    ortho_context: HashMap<String, u32>,
}

/// Directories searched before the system's, as given to [`search_first`].
static FIRST_DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Search `dirs` for NLTK data before the system directories. Takes effect once, before the
/// first tokenization (the Punkt model is read once per process); later calls are ignored.
pub fn search_first(dirs: Vec<PathBuf>) {
    let _ = FIRST_DIRS.set(dirs);
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = FIRST_DIRS.get().cloned().unwrap_or_default();
    for d in [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

impl Params {
    fn load() -> Result<Params, MissingPunkt> {
        let dirs = candidate_dirs();
        let Some(dir) = dirs
            .iter()
            .map(|d| d.join("tokenizers/punkt_tab/english"))
            .find(|d| d.join("ortho_context.tab").is_file())
        else {
            return Err(MissingPunkt {
                searched: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let lines = |f: &str| -> Vec<String> {
            read(f)
                .split_inclusive('\n')
                .map(|l| l.strip_suffix('\n').unwrap_or(l).to_string())
                .collect()
        };
        let tab = |f: &str| -> Vec<Vec<String>> {
            lines(f)
                .into_iter()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect()
        };
        Ok(Params {
            abbrev_types: lines("abbrev_types.txt").into_iter().collect(),
            sent_starters: lines("sent_starters.txt").into_iter().collect(),
            collocations: tab("collocations.tab")
                .into_iter()
                .filter(|t| t.len() == 2)
                .map(|t| (t[0].clone(), t[1].clone()))
                .collect(),
            ortho_context: tab("ortho_context.tab")
                .into_iter()
                .filter(|t| t.len() == 2)
                .filter_map(|t| Some((t[0].clone(), t[1].parse().ok()?)))
                .collect(),
        })
    }
}

const NON_WORD: &str = r#"(?:[)";}\]\*:@'\({\[‘’“”«»?!])"#;
const MULTI_CHAR: &str = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)";
const WORD_START: &str = r#"[^\("`{\[:;&\#\*@\)}\]\-,]"#;

struct Regexes {
    word: Regex,
    realign: Regex,
    numeric: Regex,
    ellipsis: Regex,
    initial: Regex,
    treebank: Vec<(Regex, &'static str)>,
    treebank_end: Vec<(Regex, &'static str)>,
}

/// One of the tokenizer's fixed patterns (NLTK's, written in this file).
#[allow(clippy::expect_used)] // literal patterns; every one is compiled by the unit tests
fn re(p: &str) -> Regex {
    Regex::new(p).expect("valid regex")
}

fn regexes() -> &'static Regexes {
    static R: OnceLock<Regexes> = OnceLock::new();
    R.get_or_init(|| Regexes {
        word: re(&format!(
            r"({MULTI_CHAR}|(?={WORD_START})\S+?(?=\s|$|{NON_WORD}|{MULTI_CHAR}|,(?=$|\s|{NON_WORD}|{MULTI_CHAR}))|\S)"
        )),
        realign: re(r#"(?m)["')\]}‘’“”«»]+?(?:\s+|(?=--)|$)"#),
        numeric: re(r"^-?[\.,]?\d[\d,\.-]*\.?$"),
        ellipsis: re(r"^\.\.+$"),
        initial: re(r"^[^\W\d]\.$"),
        // NLTKWordTokenizer: starting quotes, punctuation, brackets, double dashes.
        treebank: vec![
            (re(r"([«“‘„]|[`]+)"), " ${1} "),
            (re(r#"^""#), "``"),
            (re(r"(``)"), " ${1} "),
            (re(r#"([ \(\[{<])("|'{2})"#), "${1} `` "),
            (re(r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), "${1} "),
            // NLTK writes `*+` (possessive). Greedy `*` matches the same: giving characters
            // back never helps, as what follows the longest run must already be `\s*$`; and
            // the plain form runs in the regex crate instead of the backtracking VM.
            (re(r#"([^\.])(\.)([\]\)}>"'»”’ ]*)\s*$"#), "${1} ${2} ${3} "),
            (re(r"([:,])([^\d])"), " ${1} ${2}"),
            (re(r"([:,])$"), " ${1} "),
            (re(r"\.{2,}"), " ${0} "),
            (re(r"[;@#$%&]"), " ${0} "),
            (re(r"[\u{2012}-\u{2015}]"), " ${0} "),
            (re(r#"([^\.])(\.)([\]\)}>"']*)\s*$"#), "${1} ${2}${3} "),
            (re(r"[?!]"), " ${0} "),
            (re(r"([^'])' "), "${1} ' "),
            (re(r"[*]"), " ${0} "),
            (re(r"[\]\[\(\)\{\}<>]"), " ${0} "),
            (re(r"--"), " -- "),
        ],
        // Applied to " text ": ending quotes and contractions.
        treebank_end: vec![
            (re(r"([»”’])"), " ${1} "),
            (re(r"''"), " '' "),
            (re(r#"""#), " '' "),
            (re(r"\s+"), " "),
            (re(r"([^' ])('[sS]|'[mM]|'[dD]|') "), "${1} ${2} "),
            (re(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), "${1} ${2} "),
            (re(r"(?i)\b(can)(not)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(d)('ye)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(gim)(me)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(gon)(na)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(got)(ta)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(lem)(me)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(more)('n)\b"), " ${1} ${2} "),
            (re(r"(?i)\b(wan)(na)(?=\s)"), " ${1} ${2} "),
            (re(r"(?i) ('t)(is)\b"), " ${1} ${2} "),
            (re(r"(?i) ('t)(was)\b"), " ${1} ${2} "),
        ],
    })
}

fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// One match of Punkt's period-context pattern
/// `[\.\?!](?=(?P<after_tok>NON_WORD|\s+(?P<next_tok>\S+)))`, found by a direct scan: the
/// pattern's lookahead would otherwise need the backtracking VM over the whole text.
struct PeriodContext {
    /// Byte offset of the `.`, `?` or `!` (one byte).
    start: usize,
    /// End of `after_tok`.
    after_end: usize,
    /// Start of `next_tok`, when the lookahead took its whitespace branch.
    next_tok: Option<usize>,
}

fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '‘'
            | '’'
            | '“'
            | '”'
            | '«'
            | '»'
            | '?'
            | '!'
    )
}

fn period_contexts(text: &str) -> Vec<PeriodContext> {
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let rest = &text[i + 1..];
        match rest.chars().next() {
            Some(n) if is_non_word(n) => out.push(PeriodContext {
                start: i,
                after_end: i + 1 + n.len_utf8(),
                next_tok: None,
            }),
            Some(n) if python_space(n) => {
                // `\s+` then at least one `\S`: a run of whitespace up to the end fails.
                if let Some(tok) = rest.find(|c| !python_space(c)) {
                    let tok_end = rest[tok..]
                        .find(python_space)
                        .map_or(rest.len(), |e| tok + e);
                    out.push(PeriodContext {
                        start: i,
                        after_end: i + 1 + tok_end,
                        next_tok: Some(i + 1 + tok),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A token with Punkt's annotations.
#[derive(Debug, Clone)]
struct Token {
    tok: String,
    typ: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl Token {
    fn new(tok: &str) -> Token {
        let r = regexes();
        let lower = tok.to_lowercase();
        let typ = if r.numeric.is_match(&lower).unwrap_or(false) {
            "##number##".to_string()
        } else {
            lower
        };
        Token {
            tok: tok.to_string(),
            typ,
            period_final: tok.ends_with('.'),
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn type_no_period(&self) -> &str {
        if self.typ.chars().count() > 1 && self.typ.ends_with('.') {
            &self.typ[..self.typ.len() - 1]
        } else {
            &self.typ
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first_upper(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_uppercase)
    }

    fn first_lower(&self) -> bool {
        self.tok.chars().next().is_some_and(char::is_lowercase)
    }

    fn is_initial(&self) -> bool {
        regexes().initial.is_match(&self.tok).unwrap_or(false)
    }
}

/// Punkt's sentence splitter with loaded parameters.
struct Punkt {
    params: Params,
}

impl Punkt {
    fn tokenize_words(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        for line in text.split('\n') {
            if line.trim_matches(python_space).is_empty() {
                continue;
            }
            for m in regexes().word.captures_iter(line).flatten() {
                out.push(Token::new(m.get(1).map_or("", |g| g.as_str())));
            }
        }
        out
    }

    fn first_pass(&self, t: &mut Token) {
        let tok = t.tok.as_str();
        if matches!(tok, "." | "?" | "!") {
            t.sentbreak = true;
        } else if regexes().ellipsis.is_match(tok).unwrap_or(false) {
            t.ellipsis = true;
        } else if t.period_final && !tok.ends_with("..") {
            let stem = tok[..tok.len() - 1].to_lowercase();
            let last = stem.rsplit('-').next().unwrap_or("");
            if self.params.abbrev_types.contains(&stem) || self.params.abbrev_types.contains(last) {
                t.abbr = true;
            } else {
                t.sentbreak = true;
            }
        }
    }

    fn ortho(&self, t: &Token) -> Option<bool> {
        if matches!(t.tok.as_str(), ";" | ":" | "," | "." | "!" | "?") {
            return Some(false);
        }
        let ctx = self
            .params
            .ortho_context
            .get(t.type_no_sentperiod())
            .copied()
            .unwrap_or(0);
        if t.first_upper() && ctx & ORTHO_LC != 0 && ctx & ORTHO_MID_UC == 0 {
            return Some(true);
        }
        if t.first_lower() && (ctx & ORTHO_UC != 0 || ctx & ORTHO_BEG_LC == 0) {
            return Some(false);
        }
        None
    }

    fn second_pass(&self, t1: &mut Token, t2: &Token) {
        if !t1.period_final {
            return;
        }
        let typ = t1.type_no_period().to_string();
        let next_typ = t2.type_no_sentperiod().to_string();
        let initial = t1.is_initial();
        if self
            .params
            .collocations
            .contains(&(typ.clone(), next_typ.clone()))
        {
            t1.sentbreak = false;
            t1.abbr = true;
            return;
        }
        if (t1.abbr || t1.ellipsis) && !initial {
            if self.ortho(t2) == Some(true) {
                t1.sentbreak = true;
                return;
            }
            if t2.first_upper() && self.params.sent_starters.contains(&next_typ) {
                t1.sentbreak = true;
                return;
            }
        }
        if initial || typ == "##number##" {
            let starter = self.ortho(t2);
            if starter == Some(false) {
                t1.sentbreak = false;
                t1.abbr = true;
                return;
            }
            if starter.is_none()
                && initial
                && t2.first_upper()
                && self
                    .params
                    .ortho_context
                    .get(&next_typ)
                    .copied()
                    .unwrap_or(0)
                    & ORTHO_LC
                    == 0
            {
                t1.sentbreak = false;
                t1.abbr = true;
            }
        }
    }

    fn contains_sentbreak(&self, text: &str) -> bool {
        let mut toks = self.tokenize_words(text);
        for t in toks.iter_mut() {
            self.first_pass(t);
        }
        for i in 0..toks.len() {
            if i + 1 < toks.len() {
                let (a, b) = toks.split_at_mut(i + 1);
                self.second_pass(&mut a[i], &b[0]);
            }
            // The last token's decision is ignored: a break needs a following token.
            if toks[i].sentbreak && i + 1 < toks.len() {
                return true;
            }
        }
        false
    }

    /// Sentence byte spans, as `span_tokenize(text)` with boundary realignment.
    fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        let r = regexes();
        // Potential ends with the word before them (`_match_potential_end_contexts`).
        let mut contexts: Vec<(usize, Option<usize>, String)> = Vec::new(); // (match end, next_tok start, context)
        let context_of = |m: &PeriodContext, s: (usize, usize)| {
            format!("{}{}", &text[s.0..s.1], &text[m.start..m.after_end])
        };
        let mut prev: Option<(PeriodContext, (usize, usize))> = None;
        let mut prev_slice = (0usize, 0usize);
        for m in period_contexts(text) {
            let before = &text[prev_slice.1..m.start];
            let last_ws = before
                .bytes()
                .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
                .unwrap_or(0);
            let start = if last_ws != 0 {
                last_ws + prev_slice.1 + 1
            } else {
                prev_slice.0
            };
            let word = (start, m.start);
            if let Some((pm, ps)) = &prev
                && prev_slice.1 <= word.0
            {
                contexts.push((pm.start + 1, pm.next_tok, context_of(pm, *ps)));
            }
            prev = Some((m, word));
            prev_slice = word;
        }
        if let Some((pm, ps)) = &prev {
            contexts.push((pm.start + 1, pm.next_tok, context_of(pm, *ps)));
        }
        // `_slices_from_text`
        let mut slices = Vec::new();
        let mut last_break = 0;
        for (end, next_tok, context) in contexts {
            if self.contains_sentbreak(&context) {
                slices.push((last_break, end));
                last_break = next_tok.unwrap_or(end);
            }
        }
        slices.push((last_break, text.trim_end_matches(python_space).len()));
        // `_realign_boundaries`
        let mut out = Vec::new();
        let mut realign = 0;
        for i in 0..slices.len() {
            let s1 = (slices[i].0 + realign, slices[i].1);
            let Some(&s2) = slices.get(i + 1) else {
                if s1.0 < s1.1 {
                    out.push(s1);
                }
                continue;
            };
            let second = text.get(s2.0..s2.1).unwrap_or("");
            // `re.match`: only a match at the very start counts.
            match r
                .realign
                .find(second)
                .ok()
                .flatten()
                .filter(|m| m.start() == 0)
            {
                Some(m) => {
                    out.push((s1.0, s2.0 + m.as_str().trim_end_matches(python_space).len()));
                    realign = m.end();
                }
                None => {
                    realign = 0;
                    if s1.0 < s1.1 {
                        out.push(s1);
                    }
                }
            }
        }
        out
    }
}

fn punkt() -> Result<&'static Punkt, MissingPunkt> {
    static P: OnceLock<Result<Punkt, MissingPunkt>> = OnceLock::new();
    P.get_or_init(|| Params::load().map(|params| Punkt { params }))
        .as_ref()
        .map_err(Clone::clone)
}

/// `nltk.sent_tokenize(text)` (English Punkt model).
pub fn sent_tokenize(text: &str) -> Result<Vec<String>, MissingPunkt> {
    let p = punkt()?;
    Ok(p.spans(text)
        .into_iter()
        .map(|(a, b)| text[a..b].to_string())
        .collect())
}

/// NLTK's improved Treebank tokenizer (`NLTKWordTokenizer().tokenize`) on one sentence.
pub fn treebank_tokenize(sentence: &str) -> Vec<String> {
    let r = regexes();
    let mut text = sentence.to_string();
    let apply = |text: &mut String, rules: &[(Regex, &str)]| {
        for (re, rep) in rules {
            // Most rules match nothing in most sentences: keep the text then, unallocated.
            if let Cow::Owned(s) = re.replace_all(text, *rep) {
                *text = s;
            }
        }
    };
    apply(&mut text, &r.treebank);
    text = format!(" {text} ");
    apply(&mut text, &r.treebank_end);
    text.split(python_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `nltk.word_tokenize(text)`.
pub fn word_tokenize(text: &str) -> Result<Vec<String>, MissingPunkt> {
    Ok(sent_tokenize(text)?
        .iter()
        .flat_map(|s| treebank_tokenize(s))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treebank_splits_punctuation_quotes_and_final_periods() {
        assert_eq!(
            treebank_tokenize("«Hei!» sa hun, og gikk bl.a. til butikken..."),
            [
                "«", "Hei", "!", "»", "sa", "hun", ",", "og", "gikk", "bl.a.", "til", "butikken",
                "..."
            ]
        );
        assert_eq!(treebank_tokenize("Han sov."), ["Han", "sov", "."]);
    }
}
