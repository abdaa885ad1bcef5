//! Batched log-likelihood scoring and per-text perplexity with Hugging Face `evaluate`
//! semantics: the start token is prepended, every token of the text is predicted, and
//! perplexity is exp(mean token NLL). Rows are padded (right or left) or hold several texts
//! (packing); a text's numbers are the same whichever.

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

/// How the texts of one forward pass are laid out in its rows. Perplexities are bitwise the
/// same in every layout and at every batch size (see [`perplexities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One text per row, padding after it.
    #[default]
    RightPadded,
    /// One text per row, padding before it.
    LeftPadded,
    /// Several texts per row, each with its own positions and attending only to itself.
    Packed,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Layout, String> {
        match s {
            "right-padded" => Ok(Layout::RightPadded),
            "left-padded" => Ok(Layout::LeftPadded),
            "packed" => Ok(Layout::Packed),
            _ => Err(format!(
                "unknown layout `{s}`; use right-padded, left-padded or packed"
            )),
        }
    }
}

/// How texts are scored: batch size, context cap and row layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scoring {
    /// Texts per forward pass.
    pub batch: BatchSize,
    /// Context cap in tokens (default: the model's).
    pub max_tokens: Option<usize>,
    /// Row layout.
    pub layout: Layout,
}

/// Rows longer than this many positions are scored one per forward pass. Up to it, the
/// attention's probability × value product sums over all keys in one block, so padding or
/// packed neighbours only add exact zeros; past it, `gemm` splits the key dimension into
/// blocks whose boundaries move with the row length, which would make a text's numbers depend
/// on its batch.
pub const MAX_SHARED_ROW: usize = 512;

/// Texts packed into one row at most (segment ids are one byte, 0 meaning padding).
const MAX_SEGMENTS: usize = 255;

/// Perplexity of each text, in input order. Texts are sorted by length (longest first) and
/// scored as `scoring.batch` says (a fixed number, or as many as fit a memory budget); a batch
/// that runs the device out of memory is split in two. `max_tokens` caps the context; longer
/// texts keep their first tokens with `truncated` set.
///
/// On the CPU in f32 a text's score is bitwise independent of the batch size, the layout and
/// the other texts: every sum the forward pass makes over a text's tokens runs over the same
/// values in the same order (see [`MAX_SHARED_ROW`] and the attention's ordered softmax).
pub fn perplexities(
    model: &LoadedModel,
    texts: &[&str],
    scoring: &Scoring,
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
    perplexities_of_ids(model, ids, scoring)
}

/// [`perplexities`] of texts given as token ids (without the start token).
pub fn perplexities_of_ids(
    model: &LoadedModel,
    texts: Vec<Vec<u32>>,
    scoring: &Scoring,
) -> Result<Vec<TextScore>> {
    let limit = scoring
        .max_tokens
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
    let len = |i: usize| encoded[i].0.len() + 1;
    let mut out: Vec<Option<TextScore>> = vec![None; encoded.len()];
    let mut start = 0;
    while start < order.len() {
        let longest = len(order[start]);
        let rows: Vec<Vec<usize>> = if longest > MAX_SHARED_ROW {
            vec![vec![order[start]]]
        } else if scoring.layout == Layout::Packed {
            pack(&order[start..], longest, scoring.batch, model, len)
        } else {
            let n = scoring.batch.rows(model, longest);
            order[start..(start + n).min(order.len())]
                .iter()
                .map(|&i| vec![i])
                .collect()
        };
        start += rows.iter().map(Vec::len).sum::<usize>();
        let batch: Vec<Vec<&[u32]>> = rows
            .iter()
            .map(|r| r.iter().map(|&i| encoded[i].0.as_slice()).collect())
            .collect();
        let nlls = score_splitting(model, &batch, scoring.layout == Layout::LeftPadded)?;
        for (&i, (n, nll)) in rows.iter().flatten().zip(nlls) {
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

/// Rows of texts for one packed forward pass, taken in `order` (longest first) by first fit
/// into rows of `longest` positions (at least 128, at most [`MAX_SHARED_ROW`]): `Fixed(n)`
/// packs the next n texts; a budget fills as many rows as it affords until a text fits none.
fn pack(
    order: &[usize],
    longest: usize,
    batch: BatchSize,
    model: &LoadedModel,
    len: impl Fn(usize) -> usize,
) -> Vec<Vec<usize>> {
    let width = longest.clamp(128, MAX_SHARED_ROW);
    let (max_rows, max_texts) = match batch {
        BatchSize::Fixed(n) => (usize::MAX, n.max(1)),
        BatchSize::Budget(_) => (batch.rows(model, width), usize::MAX),
    };
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in order.iter().take(max_texts) {
        let l = len(i);
        let n_rows = rows.len();
        match rows
            .iter_mut()
            .find(|(used, r)| used + l <= width && r.len() < MAX_SEGMENTS)
        {
            Some((used, r)) => {
                *used += l;
                r.push(i);
            }
            None if n_rows < max_rows => rows.push((l, vec![i])),
            None => break,
        }
    }
    rows.into_iter().map(|(_, r)| r).collect()
}

/// [`score_batch`], halving the batch when the device runs out of memory.
fn score_splitting(
    model: &LoadedModel,
    rows: &[Vec<&[u32]>],
    left: bool,
) -> Result<Vec<(usize, f64)>> {
    match score_batch(model, rows, left) {
        Err(e) if rows.len() > 1 && super::device::is_oom(&e) => {
            tracing::warn!(
                "out of device memory with {} rows; splitting the batch",
                rows.len()
            );
            let (a, b) = rows.split_at(rows.len() / 2);
            let mut out = score_splitting(model, a, left)?;
            out.extend(score_splitting(model, b, left)?);
            Ok(out)
        }
        other => other,
    }
}

/// (tokens, NLL sum) of each text, row by row: a row holds its texts one after another, each
/// as `[bos] + text` with positions from 0 in its own segment, padded (after, or before when
/// `left`) to the longest row.
fn score_batch(model: &LoadedModel, rows: &[Vec<&[u32]>], left: bool) -> Result<Vec<(usize, f64)>> {
    let width = |r: &Vec<&[u32]>| r.iter().map(|t| t.len() + 1).sum::<usize>();
    let t = rows.iter().map(width).max().unwrap_or(0);
    let mut step = Step {
        ids: Vec::with_capacity(rows.len()),
        positions: Vec::with_capacity(rows.len()),
        key_mask: Vec::with_capacity(rows.len()),
    };
    let mut starts = Vec::with_capacity(rows.len());
    for r in rows {
        let pad = t - width(r);
        let offset = if left { pad } else { 0 };
        let (mut ids, mut positions, mut mask) = (
            vec![model.bos_id; offset],
            vec![0; offset],
            vec![0u8; offset],
        );
        let mut row_starts = Vec::with_capacity(r.len());
        for (s, text) in r.iter().enumerate() {
            row_starts.push(ids.len());
            ids.push(model.bos_id);
            ids.extend_from_slice(text);
            positions.extend(0..=text.len() as u32);
            mask.extend(std::iter::repeat_n(s as u8 + 1, text.len() + 1));
        }
        ids.resize(t, model.bos_id);
        positions.resize(t, 0);
        mask.resize(t, 0);
        step.ids.push(ids);
        step.positions.push(positions);
        step.key_mask.push(mask);
        starts.push(row_starts);
    }
    let logits = model.head(&model.hidden(&step, None)?)?;
    let ids = Tensor::from_vec(step.ids.concat(), (rows.len(), t), &model.device)?;
    let lp: Vec<Vec<f32>> = next_token_logprobs(&logits, &ids)?.to_vec2()?;
    let mut out = Vec::new();
    for ((r, starts), lp) in rows.iter().zip(starts).zip(lp) {
        for (text, start) in r.iter().zip(starts) {
            let nll: f64 = lp[start..start + text.len()]
                .iter()
                .map(|&x| -(x as f64))
                .sum();
            out.push((text.len(), nll));
        }
    }
    Ok(out)
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
