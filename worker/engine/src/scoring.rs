//! Batched log-likelihood scoring and per-text perplexity with Hugging Face `evaluate`
//! semantics: the start token is prepended, every token of the text is predicted, and
//! perplexity is exp(mean token NLL). Rows are padded (right or left) or hold several texts
//! (packing); a text's numbers are the same whichever.

use std::collections::HashMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::kernels::label_logprobs;
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
    RightPadded,
    /// One text per row, padding before it.
    LeftPadded,
    /// Several texts per row, each with its own positions and attending only to itself; texts
    /// that begin with the same tokens share those positions, which are computed once. The
    /// default: the fewest positions.
    #[default]
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

impl Scoring {
    /// The context limit in tokens: `max_tokens`, never more than the model's positions.
    pub fn limit(&self, model: &LoadedModel) -> usize {
        self.max_tokens
            .unwrap_or(model.max_positions)
            .min(model.max_positions)
    }
}

/// Rows longer than this many positions are scored one per forward pass. It bounds a packed
/// row's `T × T` mask and, on GPUs and in f16/bf16, the attention's dense products over the
/// whole row. On the CPU in f32 a text's numbers do not depend on it: the attention visits only
/// the keys each query sees (`nlebench-attention`).
pub const MAX_SHARED_ROW: usize = 512;

/// Perplexity of each text, in input order. Texts are sorted by length (longest first), or
/// for packed rows by their tokens (texts longer than [`MAX_SHARED_ROW`] first), and scored
/// as `scoring.batch` says (a fixed number, or as many as fit a memory budget); a batch
/// that runs the device out of memory is split in two. `max_tokens` caps the context; longer
/// texts keep their first tokens with `truncated` set.
///
/// On the CPU in f32 a text's score is bitwise independent of the batch size, the layout and
/// the other texts: every sum the forward pass makes over a text's tokens runs over the same
/// values in the same order (the linear layers' ordered FMA chains, and the attention over the
/// keys each query sees).
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
    let limit = scoring.limit(model);
    let mut seqs = Vec::with_capacity(texts.len());
    let mut truncated = Vec::with_capacity(texts.len());
    for (i, mut ids) in texts.into_iter().enumerate() {
        if ids.is_empty() {
            return Err(EngineError::EmptyText { index: i });
        }
        truncated.push(ids.len() + 1 > limit);
        ids.truncate(limit.saturating_sub(1).max(1));
        ids.insert(0, model.bos_id);
        seqs.push(Seq { ids, skip: 0 });
    }
    let scored = score_seqs(model, &seqs, scoring, false)?;
    Ok(scored
        .into_iter()
        .zip(truncated)
        .map(|(s, truncated)| {
            let nll_sum = -s.logprob;
            TextScore {
                n_tokens: s.n,
                nll_sum,
                perplexity: (nll_sum / s.n as f64).exp(),
                truncated,
            }
        })
        .collect())
}

/// The score of a continuation after its context (lm-evaluation-harness's `loglikelihood`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContinuationScore {
    /// Sum of the continuation tokens' log-probabilities (nats, ≤ 0).
    pub logprob: f64,
    /// Every continuation token was the most likely one at its position (lm-eval's
    /// `is_greedy`).
    pub greedy: bool,
    /// Context tokens cut from the left to fit the context limit.
    pub truncated: usize,
}

/// The log-likelihood of each continuation after its context, both as token ids, with
/// lm-evaluation-harness's semantics: no start token is added (an empty context is the
/// caller's prefix token, as lm-eval passes it), the context is cut from the left when the
/// pair does not fit the context limit, and only the continuation's tokens are scored. Pairs
/// that share their context share its positions in a packed row, and a pair's numbers are
/// bitwise the same at any batch size and in any layout, as [`perplexities`].
pub fn continuation_logprobs(
    model: &LoadedModel,
    pairs: &[(Vec<u32>, Vec<u32>)],
    scoring: &Scoring,
) -> Result<Vec<ContinuationScore>> {
    let limit = scoring.limit(model);
    let mut seqs = Vec::with_capacity(pairs.len());
    let mut cut = Vec::with_capacity(pairs.len());
    for (i, (context, continuation)) in pairs.iter().enumerate() {
        if context.is_empty() || continuation.is_empty() {
            return Err(EngineError::EmptyText { index: i });
        }
        if continuation.len() > limit {
            return Err(EngineError::Generation(format!(
                "pair {i}: the continuation has {} tokens, more than the context limit of {limit}",
                continuation.len()
            )));
        }
        // A row holds every token but the last: `limit` positions hold `limit + 1` tokens.
        let drop = (context.len() + continuation.len()).saturating_sub(limit + 1);
        let ids: Vec<u32> = context[drop..]
            .iter()
            .chain(continuation)
            .copied()
            .collect();
        seqs.push(Seq {
            skip: context.len() - drop - 1,
            ids,
        });
        cut.push(drop);
    }
    let scored = score_seqs(model, &seqs, scoring, true)?;
    Ok(scored
        .into_iter()
        .zip(cut)
        .map(|(s, truncated)| ContinuationScore {
            logprob: s.logprob,
            greedy: s.greedy,
            truncated,
        })
        .collect())
}

/// A sequence to score: its first token is the root of its row's tree (the start token, or a
/// context's first token); of the tokens after it, the first `skip` are context, whose
/// positions are computed but not scored.
#[derive(Debug, Clone)]
struct Seq {
    ids: Vec<u32>,
    skip: usize,
}

/// What scoring a [`Seq`] gave.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    /// Tokens scored.
    n: usize,
    /// Sum of their log-probabilities, in f64, in token order.
    logprob: f64,
    /// Each was the most likely token at its position (computed when asked).
    greedy: bool,
}

/// Score each sequence, in input order. Sequences are sorted by length (longest first), or
/// for packed rows by their tokens (those longer than [`MAX_SHARED_ROW`] first), and scored
/// as `scoring.batch` says (a fixed number, or as many as fit a memory budget); a batch that
/// runs the device out of memory is split in two. `greedy` asks whether each scored token
/// was the most likely one.
fn score_seqs(
    model: &LoadedModel,
    seqs: &[Seq],
    scoring: &Scoring,
    greedy: bool,
) -> Result<Vec<Scored>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].ids.len()));
    let len = |i: usize| seqs[i].ids.len();
    let seq = |i: usize| &seqs[i];
    let packed = scoring.layout == Layout::Packed;
    let left = scoring.layout == Layout::LeftPadded;
    // Texts too long to share a row come first, one per pass; the rest, when packed, in token
    // order, so that texts which begin alike are neighbours and can share their beginning.
    let long = order.partition_point(|&i| len(i) > MAX_SHARED_ROW);
    if packed {
        order[long..].sort_by(|&a, &b| seqs[a].ids.cmp(&seqs[b].ids));
    }
    let mut out: Vec<Option<Scored>> = vec![None; seqs.len()];
    let mut start = 0;
    while start < order.len() {
        let first = order[start];
        let rows: Vec<Row> = if len(first) > MAX_SHARED_ROW {
            vec![Row::of(first, seq(first))]
        } else if packed {
            let limits = match scoring.batch {
                BatchSize::Fixed(n) => (usize::MAX, n.max(1)),
                BatchSize::Budget(_) => (scoring.batch.rows(model, MAX_SHARED_ROW), usize::MAX),
            };
            balanced(
                pack(&order[start..], MAX_SHARED_ROW, limits, seq),
                &order[start..],
                MAX_SHARED_ROW,
                seq,
            )
        } else {
            let n = scoring.batch.rows(model, len(first));
            order[start..(start + n).min(order.len())]
                .iter()
                .map(|&i| Row::of(i, seq(i)))
                .collect()
        };
        start += rows.iter().map(|r| r.texts.len()).sum::<usize>();
        for (i, s) in score_splitting(model, &rows, left, greedy)? {
            out[i] = Some(s);
        }
    }
    out.into_iter()
        .map(|s| s.ok_or_else(|| EngineError::Generation("a text was left unscored".into())))
        .collect()
}

/// One row of a scoring pass. Its positions form a forest: each text is a path from a root
/// (its start token) down, and texts that begin alike share the positions of their common
/// beginning, which are computed once. A position attends to its ancestors and itself, which
/// are the positions the text alone would have before it, in the same order. A text's last
/// token has no position: nothing attends to it and what it predicts is not scored.
#[derive(Debug, Default)]
struct Row {
    /// Token of each position.
    ids: Vec<u32>,
    /// Depth of each position in its tree: its position id.
    depth: Vec<u32>,
    /// Parent of each position ([`Row::ROOT`] for a start token).
    parent: Vec<u32>,
    /// The position of each (parent, token).
    nodes: HashMap<(u32, u32), u32>,
    /// Each text: its index, the positions of its root and of every token but the last, the
    /// token each of them predicts, and how many of those are context (not scored).
    texts: Vec<(usize, Vec<u32>, Vec<u32>, usize)>,
}

impl Row {
    const ROOT: u32 = u32::MAX;

    /// A row holding one text.
    fn of(index: usize, seq: &Seq) -> Row {
        let mut row = Row::default();
        row.push(index, seq);
        row
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// How many of the positions a sequence needs (every token but its last) the row holds
    /// already.
    fn shared(&self, seq: &Seq) -> usize {
        let mut parent = Row::ROOT;
        let mut n = 0;
        for &token in &seq.ids[..seq.ids.len() - 1] {
            match self.nodes.get(&(parent, token)) {
                Some(&node) => {
                    parent = node;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Add sequence `index` (of two tokens at least), reusing the positions of its shared
    /// beginning.
    fn push(&mut self, index: usize, seq: &Seq) {
        let mut parent = Row::ROOT;
        let mut path = Vec::with_capacity(seq.ids.len() - 1);
        for (depth, &token) in seq.ids[..seq.ids.len() - 1].iter().enumerate() {
            let next = self.ids.len() as u32;
            let node = *self.nodes.entry((parent, token)).or_insert(next);
            if node == next {
                self.ids.push(token);
                self.depth.push(depth as u32);
                self.parent.push(parent);
            }
            path.push(node);
            parent = node;
        }
        self.texts
            .push((index, path, seq.ids[1..].to_vec(), seq.skip));
    }
}

/// Rows of `width` positions for one packed forward pass, filled with texts in `order` (at
/// most `max_texts` of them, in at most `max_rows` rows): each text goes into the row that
/// holds most of its beginning among those it fits (the first such), else a new row; packing
/// stops at the first text that fits none.
fn pack<'t>(
    order: &[usize],
    width: usize,
    (max_rows, max_texts): (usize, usize),
    seq: impl Fn(usize) -> &'t Seq,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for &i in order.iter().take(max_texts) {
        let s = seq(i);
        let best = rows
            .iter()
            .enumerate()
            .map(|(r, row)| (r, row.shared(s)))
            .filter(|&(r, shared)| rows[r].len() + s.ids.len() - 1 - shared <= width)
            .max_by_key(|&(r, shared)| (shared, std::cmp::Reverse(r)));
        match best {
            Some((r, _)) => rows[r].push(i, s),
            None if rows.len() < max_rows => rows.push(Row::of(i, s)),
            None => break,
        }
    }
    rows
}

/// The same texts as `rows` (packed from the first of `order` into rows of `width`) in as
/// many rows of the least width that holds them, found by bisection: a pass pads every row to
/// its longest, so rows of equal length waste least.
fn balanced<'t>(
    rows: Vec<Row>,
    order: &[usize],
    width: usize,
    seq: impl Fn(usize) -> &'t Seq + Copy,
) -> Vec<Row> {
    let (n, taken) = (
        rows.len(),
        rows.iter().map(|r| r.texts.len()).sum::<usize>(),
    );
    let longest = rows.iter().map(Row::len).max().unwrap_or(0);
    let fits = |width| {
        let r = pack(&order[..taken], width, (n, taken), seq);
        (r.iter().map(|r| r.texts.len()).sum::<usize>() == taken).then_some(r)
    };
    let (mut lo, mut hi) = (rows.iter().map(Row::len).sum::<usize>().div_ceil(n), width);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(mid).is_some() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    match fits(hi) {
        Some(r) if r.iter().map(Row::len).max() < Some(longest) => r,
        _ => rows,
    }
}

/// [`score_batch`], halving the batch when the device runs out of memory.
fn score_splitting(
    model: &LoadedModel,
    rows: &[Row],
    left: bool,
    greedy: bool,
) -> Result<Vec<(usize, Scored)>> {
    match score_batch(model, rows, left, greedy) {
        Err(e) if rows.len() > 1 && super::device::is_oom(&e) => {
            tracing::warn!(
                "out of device memory with {} rows; splitting the batch",
                rows.len()
            );
            let (a, b) = rows.split_at(rows.len() / 2);
            let mut out = score_splitting(model, a, left, greedy)?;
            out.extend(score_splitting(model, b, left, greedy)?);
            Ok(out)
        }
        other => other,
    }
}

/// Each sequence of `rows` scored, with its index, in rows padded (after, or before when
/// `left`) to the longest row. Each scored position goes through the head once, however many
/// sequences it predicts a token of; padding and context do not.
fn score_batch(
    model: &LoadedModel,
    rows: &[Row],
    left: bool,
    greedy: bool,
) -> Result<Vec<(usize, Scored)>> {
    let t = rows.iter().map(Row::len).max().unwrap_or(0);
    let window = model.window().map(|w| w as u32);
    let (mut ids, mut positions) = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    let offset = |row: &Row| if left { t - row.len() } else { 0 };
    let mut mask = vec![0u8; rows.len() * t * t];
    for (b, row) in rows.iter().enumerate() {
        let offset = offset(row);
        let padded = |x: &[u32], fill: u32| {
            let mut v = vec![fill; offset];
            v.extend_from_slice(x);
            v.resize(t, fill);
            v
        };
        ids.push(padded(&row.ids, model.bos_id));
        positions.push(padded(&row.depth, 0));
        for q in 0..row.len() {
            let keys = &mut mask[(b * t + offset + q) * t + offset..][..row.len()];
            let mut k = q as u32;
            while k != Row::ROOT && window.is_none_or(|w| row.depth[q] - row.depth[k as usize] < w)
            {
                keys[k as usize] = 1;
                k = row.parent[k as usize];
            }
        }
    }
    let mask = Tensor::from_vec(mask, (rows.len(), 1, t, t), &model.device)?;
    let h = model.hidden_masked(&ids, &positions, &mask, None)?;
    let h = h.reshape((rows.len() * t, h.dim(2)?))?;
    let (mut heads, mut head_of, mut labels) = (Vec::new(), HashMap::new(), Vec::new());
    for (b, row) in rows.iter().enumerate() {
        for (_, path, text, skip) in &row.texts {
            for (&p, &token) in path.iter().zip(text).skip(*skip) {
                let at = (b * t + offset(row) + p as usize) as u32;
                let head = *head_of.entry(at).or_insert_with(|| {
                    heads.push(at);
                    heads.len() as u32 - 1
                });
                labels.push((head, token));
            }
        }
    }
    let n = heads.len();
    let heads = Tensor::from_vec(heads, n, &model.device)?;
    let logits = model.head(&h.index_select(&heads, 0)?)?;
    let mut lp = label_logprobs(&logits, &labels)?.into_iter();
    let best = if greedy {
        Some(logits.argmax(candle_core::D::Minus1)?.to_vec1::<u32>()?)
    } else {
        None
    };
    let mut label = labels.iter();
    let mut out = Vec::new();
    for row in rows {
        for (i, _, text, skip) in &row.texts {
            let n = text.len() - skip;
            let logprob: f64 = lp.by_ref().take(n).map(f64::from).sum();
            // Every label is read (not `all`, which would stop at the first miss).
            let greedy = label.by_ref().take(n).fold(true, |all, &(head, token)| {
                all && best.as_ref().is_none_or(|b| b[head as usize] == token)
            });
            out.push((*i, Scored { n, logprob, greedy }));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts as sequences scored whole after the start token `bos`.
    fn with_root(bos: u32, texts: &[Vec<u32>]) -> Vec<Seq> {
        texts
            .iter()
            .map(|t| Seq {
                ids: [&[bos][..], t].concat(),
                skip: 0,
            })
            .collect()
    }

    #[test]
    fn texts_that_begin_alike_share_a_rows_positions() {
        let bos = 0;
        // As if `Han er lege .`, `Han er lærer .`, `Katten sov .`, `Han er lege i Bergen .`.
        let texts: Vec<Vec<u32>> = vec![
            vec![10, 11, 12, 1],
            vec![10, 11, 13, 1],
            vec![20, 21, 1],
            vec![10, 11, 12, 14, 15, 1],
        ];
        let seqs = with_root(bos, &texts);
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by(|&a, &b| texts[a].cmp(&texts[b]));
        let rows = pack(&order, 128, (usize::MAX, 4), |i| &seqs[i]);
        assert_eq!(rows.len(), 1, "four short texts fit one row");
        let row = &rows[0];
        // One start token for all; `Han er lege` once; `lærer`; `Katten sov`; text 3 adds
        // ` i Bergen` to text 0's `lege` (last tokens have no position).
        assert_eq!(row.len(), 1 + 3 + 1 + 2 + 2);
        for (i, path, labels, _) in &row.texts {
            let tokens: Vec<u32> = path.iter().map(|&p| row.ids[p as usize]).collect();
            let text = &texts[*i];
            assert_eq!(labels, text);
            assert_eq!(
                tokens,
                [&[bos][..], &text[..text.len() - 1]].concat(),
                "text {i}"
            );
            let depths: Vec<u32> = path.iter().map(|&p| row.depth[p as usize]).collect();
            assert_eq!(depths, (0..path.len() as u32).collect::<Vec<_>>());
            assert_eq!(row.parent[path[0] as usize], Row::ROOT);
            for pair in path.windows(2) {
                assert_eq!(row.parent[pair[1] as usize], pair[0]);
            }
        }
        // A narrow row keeps what fits: the next text starts a new row, or packing stops.
        let narrow = pack(&order, 6, (usize::MAX, 4), |i| &seqs[i]);
        assert!(narrow.iter().all(|r| r.len() <= 6));
        assert_eq!(narrow.iter().map(|r| r.texts.len()).sum::<usize>(), 4);
        let one = pack(&order, 6, (1, 4), |i| &seqs[i]);
        assert_eq!(one.len(), 1);
        assert!(one[0].texts.len() < 4);
    }

    #[test]
    fn rows_of_a_pass_are_balanced() {
        // Ten texts of 5 positions each (no common beginning but the start token): 41 positions.
        let texts: Vec<Vec<u32>> = (0..10)
            .map(|i| vec![10 + i, 30 + i, 50 + i, 70 + i, 1])
            .collect();
        let order: Vec<usize> = (0..10).collect();
        let seqs = with_root(0, &texts);
        let text = |i: usize| &seqs[i];
        let wide = pack(&order, 32, (usize::MAX, 10), text);
        assert_eq!(wide.iter().map(Row::len).collect::<Vec<_>>(), [29, 13]);
        let even = balanced(wide, &order, 32, text);
        assert_eq!(even.iter().map(Row::len).collect::<Vec<_>>(), [21, 21]);
        let mut indices: Vec<usize> = even
            .iter()
            .flat_map(|r| r.texts.iter().map(|t| t.0))
            .collect();
        indices.sort_unstable();
        assert_eq!(indices, order, "every text is still there, once");
    }
}
