//! lm-evaluation-harness's `loglikelihood` requests through the engine, as lm-eval 0.4.13's
//! `HFLM` runs them: the text tokenized as its `tok_encode` does (the tokenizer's special
//! tokens added, unless the text begins with the start token's text), the pair split as its
//! `_encode_pair` splits it, an empty context replaced by the prefix token, and the context
//! cut from the left to fit the model. Only the continuation's tokens are scored, with
//! whether each was the most likely token (`is_greedy`).

use engine::{ContinuationScore, EngineError, LoadedModel, Scoring, continuation_logprobs};

/// lm-eval's `tok_encode`: the tokenizer's special tokens are added (HF's default), except
/// for a text that already begins with the start token's text.
pub fn encode(model: &LoadedModel, text: &str) -> Result<Vec<u32>, EngineError> {
    let bos = model.tokenizer.id_to_token(model.bos_id);
    if bos.is_some_and(|b| !b.is_empty() && text.starts_with(&b)) {
        model.encode(text)
    } else {
        model.encode_special(text)
    }
}

/// The context's and the continuation's tokens as lm-eval's `loglikelihood` makes them: an
/// empty context is the prefix token (the start token); otherwise whitespace that ends the
/// context moves to the continuation, the two are tokenized together, and the continuation's
/// tokens are those after the context's own.
pub fn encode_pair(
    model: &LoadedModel,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>), EngineError> {
    if context.is_empty() {
        return Ok((vec![model.bos_id], encode(model, continuation)?));
    }
    // Python's `str.rstrip()`: trailing whitespace (Rust's `char::is_whitespace` is the same
    // Unicode property) moves to the continuation.
    let kept = context.trim_end_matches(char::is_whitespace);
    let continuation = format!("{}{continuation}", &context[kept.len()..]);
    let whole = encode(model, &format!("{kept}{continuation}"))?;
    let context_ids = encode(model, kept)?;
    let continuation_ids = whole.get(context_ids.len()..).unwrap_or_default().to_vec();
    Ok((context_ids, continuation_ids))
}

/// The log-likelihood of each `(context, continuation)` and whether the continuation is the
/// greedy one, in input order (lm-eval's `loglikelihood` results).
pub fn loglikelihoods(
    model: &LoadedModel,
    requests: &[(&str, &str)],
    scoring: &Scoring,
) -> Result<Vec<ContinuationScore>, EngineError> {
    let pairs = requests
        .iter()
        .map(|(context, continuation)| encode_pair(model, context, continuation))
        .collect::<Result<Vec<_>, _>>()?;
    continuation_logprobs(model, &pairs, scoring)
}
