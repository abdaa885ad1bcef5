//! Which examples a run measured, told by their inputs rather than by where they came from:
//! two runs, a run and an import, or two imports of the authors' released files measured the
//! same examples when their examples' inputs are the same, whatever file held them and in
//! whatever order.
//!
//! An example's inputs by task kind: a pair's two sentences (`loglik-pair`), the reference
//! text (`generation`, `chain`: the gold output, the same in a run and in an outputs file),
//! the text and gold label (`classification`), the prompt (`attribute-scores`), the document
//! (`lm-eval`, whatever few-shot examples its prompt had). Its hash is
//! the SHA-256 of those texts joined by U+001F; a run's examples identity is the SHA-256 of
//! its examples' hashes, sorted, joined by newlines (`tools/reference/released_baselines.py`
//! computes the same for the baselines).

use sha2::{Digest, Sha256};

use crate::TaskKind;

/// The texts that make an example what it is, for a task of `kind`.
pub fn inputs<'a>(kind: TaskKind, prompt: &'a str, reference: Option<&'a str>) -> Vec<&'a str> {
    let reference = reference.unwrap_or("");
    match kind {
        TaskKind::LoglikPair | TaskKind::Classification => vec![prompt, reference],
        // An lm-eval task's sample holds its document (JSON) as the reference.
        TaskKind::Generation | TaskKind::Chain | TaskKind::LmEval => vec![reference],
        TaskKind::AttributeScores => vec![prompt],
    }
}

/// The hash of one example's inputs (hex).
pub fn example_hash(kind: TaskKind, prompt: &str, reference: Option<&str>) -> String {
    hex::encode(Sha256::digest(
        inputs(kind, prompt, reference).join("\u{1f}").as_bytes(),
    ))
}

/// The identity of a set of examples from their hashes (order does not matter).
pub fn identity<'a>(hashes: impl IntoIterator<Item = &'a str>) -> String {
    let mut sorted: Vec<&str> = hashes.into_iter().collect();
    sorted.sort_unstable();
    hex::encode(Sha256::digest(sorted.join("\n").as_bytes()))
}

/// An identity as shown: its first 12 hex digits.
pub fn short(identity: &str) -> &str {
    &identity[..identity.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_examples_in_another_order_are_the_same_set() {
        let a = example_hash(TaskKind::LoglikPair, "Han er lege.", Some("Hun er lege."));
        let b = example_hash(
            TaskKind::LoglikPair,
            "Kari er sterk.",
            Some("Ola er sterk."),
        );
        assert_eq!(
            identity([a.as_str(), b.as_str()]),
            identity([b.as_str(), a.as_str()])
        );
        assert_ne!(identity([a.as_str()]), identity([a.as_str(), b.as_str()]));
        // The sentences' order inside a pair matters; a generation example is its reference.
        let swapped = example_hash(TaskKind::LoglikPair, "Hun er lege.", Some("Han er lege."));
        assert_ne!(a, swapped);
        assert_eq!(
            example_hash(TaskKind::Generation, "prompt A", Some("gull")),
            example_hash(TaskKind::Chain, "prompt B", Some("gull"))
        );
        // A value the Python script reproduces: sha256("a\x1fb").
        assert_eq!(
            example_hash(TaskKind::LoglikPair, "a", Some("b")),
            "f04cdced9736a69da6103f08a4daaf8c485dd481217d218a1b4993c8c3968e13"
        );
    }
}
