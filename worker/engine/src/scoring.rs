//! Batched log-likelihood scoring and per-text perplexity with Hugging Face `evaluate`
//! semantics: the start token is prepended, every token of the text is predicted, and
//! perplexity is exp(mean token NLL). Batches are right-padded with a mask.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::kernels::next_token_logprobs;
use super::model::{LoadedModel, Step};

/// The score of one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextScore {
    /// Tokens scored (the text's tokens, after any truncation).
    pub n_tokens: usize,
    /// Sum of the tokens' negative log-likelihoods (nats).
    pub nll_sum: f64,
    /// exp(nll_sum / n_tokens).
    pub perplexity: f64,
    /// Tokens were cut off at the context limit.
    pub truncated: bool,
}

/// Rows of `seq_len` tokens that fit a scoring forward pass into `budget` bytes: logits and
/// their log-softmax in f32, attention scores and probabilities, and the block activations.
pub fn rows_for_budget(model: &LoadedModel, seq_len: usize, budget: usize) -> usize {
    let (v, c, heads) = (
        model.config.vocab_size(),
        model.config.hidden_size(),
        model.config.heads(),
    );
    let per_row = seq_len * (2 * v * 4 + 16 * c * 4) + 2 * heads * seq_len * seq_len * 4;
    (budget / per_row.max(1)).clamp(1, 256)
}

/// How many texts go into one scoring forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// Exactly this many texts (at least one).
    Fixed(usize),
    /// As many texts as fit this many bytes ([`rows_for_budget`]).
    Budget(usize),
}

impl BatchSize {
    /// The default memory budget: 2048 MiB.
    pub const DEFAULT_BUDGET_MB: u64 = 2048;

    /// A setting's batch size, or else as many texts as fit `budget_mb` MiB.
    pub fn of_setting(batch_size: Option<usize>, budget_mb: u64) -> BatchSize {
        match batch_size {
            Some(n) => BatchSize::Fixed(n),
            None => BatchSize::Budget((budget_mb as usize) << 20),
        }
    }

    fn rows(self, model: &LoadedModel, seq_len: usize) -> usize {
        match self {
            BatchSize::Fixed(n) => n.max(1),
            BatchSize::Budget(bytes) => rows_for_budget(model, seq_len, bytes),
        }
    }
}

impl Default for BatchSize {
    fn default() -> Self {
        BatchSize::of_setting(None, BatchSize::DEFAULT_BUDGET_MB)
    }
}

/// Perplexity of each text, in input order. Texts are sorted by length (longest first) and
/// scored as `batch` says (a fixed number, or as many as fit a memory budget); a batch that
/// runs the device out of memory is split in two. `max_tokens` caps the context (default: the
/// model's); longer texts keep their first tokens with `truncated` set.
pub fn perplexities(
    model: &LoadedModel,
    texts: &[&str],
    batch: BatchSize,
    max_tokens: Option<usize>,
) -> Result<Vec<TextScore>> {
    let ids = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let ids = model.encode(t)?;
            if ids.is_empty() {
                return Err(EngineError::EmptyText { index: i });
            }
            Ok(ids)
        })
        .collect::<Result<Vec<_>>>()?;
    perplexities_of_ids(model, ids, batch, max_tokens)
}

/// [`perplexities`] of texts given as token ids (without the start token).
pub fn perplexities_of_ids(
    model: &LoadedModel,
    texts: Vec<Vec<u32>>,
    batch: BatchSize,
    max_tokens: Option<usize>,
) -> Result<Vec<TextScore>> {
    let limit = max_tokens
        .unwrap_or(model.max_positions)
        .min(model.max_positions);
    let mut encoded = Vec::with_capacity(texts.len());
    for (i, mut ids) in texts.into_iter().enumerate() {
        if ids.is_empty() {
            return Err(EngineError::EmptyText { index: i });
        }
        let truncated = ids.len() + 1 > limit;
        ids.truncate(limit.saturating_sub(1).max(1));
        encoded.push((ids, truncated));
    }
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].0.len()));
    let mut out: Vec<Option<TextScore>> = vec![None; encoded.len()];
    let mut start = 0;
    while start < order.len() {
        let longest = encoded[order[start]].0.len() + 1;
        let n = batch.rows(model, longest);
        let chunk = &order[start..(start + n).min(order.len())];
        start += chunk.len();
        let rows: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].0.as_slice()).collect();
        let nlls = score_splitting(model, &rows)?;
        for (&i, (n, nll)) in chunk.iter().zip(nlls) {
            out[i] = Some(TextScore {
                n_tokens: n,
                nll_sum: nll,
                perplexity: (nll / n as f64).exp(),
                truncated: encoded[i].1,
            });
        }
    }
    out.into_iter()
        .map(|s| s.ok_or_else(|| EngineError::Generation("a text was left unscored".into())))
        .collect()
}

/// [`score_batch`], halving the batch when the device runs out of memory.
fn score_splitting(model: &LoadedModel, rows: &[&[u32]]) -> Result<Vec<(usize, f64)>> {
    match score_batch(model, rows) {
        Err(e) if rows.len() > 1 && super::device::is_oom(&e) => {
            tracing::warn!(
                "out of device memory with {} rows; splitting the batch",
                rows.len()
            );
            let (a, b) = rows.split_at(rows.len() / 2);
            let mut out = score_splitting(model, a)?;
            out.extend(score_splitting(model, b)?);
            Ok(out)
        }
        other => other,
    }
}

/// (tokens, NLL sum) of each row: `[bos] + row`, right-padded to the longest row.
fn score_batch(model: &LoadedModel, rows: &[&[u32]]) -> Result<Vec<(usize, f64)>> {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0) + 1;
    let mut step = Step {
        ids: Vec::with_capacity(rows.len()),
        positions: vec![(0..t as u32).collect(); rows.len()],
        key_mask: Vec::with_capacity(rows.len()),
    };
    for r in rows {
        let mut ids = vec![model.bos_id];
        ids.extend_from_slice(r);
        let mut mask = vec![1u8; ids.len()];
        ids.resize(t, model.bos_id);
        mask.resize(t, 0);
        step.ids.push(ids);
        step.key_mask.push(mask);
    }
    let logits = model.head(&model.hidden(&step, None)?)?;
    let ids = Tensor::from_vec(step.ids.concat(), (rows.len(), t), &model.device)?;
    let lp: Vec<Vec<f32>> = next_token_logprobs(&logits, &ids)?.to_vec2()?;
    Ok(rows
        .iter()
        .zip(lp)
        .map(|(r, lp)| {
            let nll: f64 = lp[..r.len()].iter().map(|&x| -(x as f64)).sum();
            (r.len(), nll)
        })
        .collect())
}

/// Sequence-classification logits `[labels]` of each text with transformers' semantics: the
/// hidden state of the last real token goes through the `score` head (from a SEQ_CLS adapter).
pub fn classify(model: &LoadedModel, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let score = model.classifier.as_ref().ok_or_else(|| {
        EngineError::Generation(
            "the model has no classification head; merge a SEQ_CLS adapter (with a `score` module)"
                .into(),
        )
    })?;
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch_size.max(1)) {
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, t) in chunk.iter().enumerate() {
            let ids = model.encode_special(t)?;
            if ids.is_empty() {
                return Err(EngineError::EmptyText { index: i });
            }
            let keep = ids.len().min(model.max_positions);
            rows.push(ids[..keep].to_vec());
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        let step = Step {
            positions: vec![(0..t as u32).collect(); rows.len()],
            key_mask: rows
                .iter()
                .map(|r| {
                    std::iter::repeat_n(1u8, r.len())
                        .chain(std::iter::repeat_n(0, t - r.len()))
                        .collect()
                })
                .collect(),
            ids: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .copied()
                        .chain(std::iter::repeat_n(model.bos_id, t - r.len()))
                        .collect()
                })
                .collect(),
        };
        let h = model.hidden(&step, None)?;
        for (i, r) in rows.iter().enumerate() {
            let last = h.get(i)?.get(r.len() - 1)?;
            let logits = score
                .matmul(&last.unsqueeze(1)?)?
                .squeeze(1)?
                .to_dtype(candle_core::DType::F32)?;
            out.push(logits.to_vec1()?);
        }
    }
    Ok(out)
}
