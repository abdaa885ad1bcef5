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
    let text = |i: usize| encoded[i].0.as_slice();
    let packed = scoring.layout == Layout::Packed;
    let left = scoring.layout == Layout::LeftPadded;
    // Texts too long to share a row come first, one per pass; the rest, when packed, in token
    // order, so that texts which begin alike are neighbours and can share their beginning.
    let long = order.partition_point(|&i| len(i) > MAX_SHARED_ROW);
    if packed {
        order[long..].sort_by(|&a, &b| text(a).cmp(text(b)));
    }
    let mut out: Vec<Option<TextScore>> = vec![None; encoded.len()];
    let mut start = 0;
    while start < order.len() {
        let first = order[start];
        let rows: Vec<Row> = if len(first) > MAX_SHARED_ROW {
            vec![Row::of(first, model.bos_id, text(first))]
        } else if packed {
            let limits = match scoring.batch {
                BatchSize::Fixed(n) => (usize::MAX, n.max(1)),
                BatchSize::Budget(_) => (scoring.batch.rows(model, MAX_SHARED_ROW), usize::MAX),
            };
            balanced(
                pack(&order[start..], MAX_SHARED_ROW, limits, model.bos_id, text),
                &order[start..],
                MAX_SHARED_ROW,
                model.bos_id,
                text,
            )
        } else {
            let n = scoring.batch.rows(model, len(first));
            order[start..(start + n).min(order.len())]
                .iter()
                .map(|&i| Row::of(i, model.bos_id, text(i)))
                .collect()
        };
        start += rows.iter().map(|r| r.texts.len()).sum::<usize>();
        for (i, n, nll) in score_splitting(model, &rows, left)? {
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
    /// Each text: its index, the positions of its start token and of every token but the
    /// last, and the token each of them predicts (the text).
    texts: Vec<(usize, Vec<u32>, Vec<u32>)>,
}

impl Row {
    const ROOT: u32 = u32::MAX;

    /// A row holding one text.
    fn of(index: usize, bos: u32, text: &[u32]) -> Row {
        let mut row = Row::default();
        row.push(index, bos, text);
        row
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// How many of the positions a text needs (`[bos] + text` but its last token) the row
    /// holds already.
    fn shared(&self, bos: u32, text: &[u32]) -> usize {
        let mut parent = Row::ROOT;
        let mut n = 0;
        for &token in std::iter::once(&bos).chain(&text[..text.len() - 1]) {
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

    /// Add text `index` (not empty), reusing the positions of its shared beginning.
    fn push(&mut self, index: usize, bos: u32, text: &[u32]) {
        let mut parent = Row::ROOT;
        let mut path = Vec::with_capacity(text.len());
        for (depth, &token) in std::iter::once(&bos)
            .chain(&text[..text.len() - 1])
            .enumerate()
        {
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
        self.texts.push((index, path, text.to_vec()));
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
    bos: u32,
    text: impl Fn(usize) -> &'t [u32],
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for &i in order.iter().take(max_texts) {
        let t = text(i);
        let best = rows
            .iter()
            .enumerate()
            .map(|(r, row)| (r, row.shared(bos, t)))
            .filter(|&(r, shared)| rows[r].len() + t.len() - shared <= width)
            .max_by_key(|&(r, shared)| (shared, std::cmp::Reverse(r)));
        match best {
            Some((r, _)) => rows[r].push(i, bos, t),
            None if rows.len() < max_rows => rows.push(Row::of(i, bos, t)),
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
    bos: u32,
    text: impl Fn(usize) -> &'t [u32] + Copy,
) -> Vec<Row> {
    let (n, taken) = (
        rows.len(),
        rows.iter().map(|r| r.texts.len()).sum::<usize>(),
    );
    let longest = rows.iter().map(Row::len).max().unwrap_or(0);
    let fits = |width| {
        let r = pack(&order[..taken], width, (n, taken), bos, text);
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
) -> Result<Vec<(usize, usize, f64)>> {
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

/// (text index, tokens, NLL sum) of each text in `rows`, padded (after, or before when
/// `left`) to the longest row. Each position goes through the head once, however many texts
/// it predicts a token of; padding does not.
fn score_batch(model: &LoadedModel, rows: &[Row], left: bool) -> Result<Vec<(usize, usize, f64)>> {
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
        for (_, path, text) in &row.texts {
            for (&p, &token) in path.iter().zip(text) {
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
    let mut out = Vec::new();
    for row in rows {
        for (i, _, text) in &row.texts {
            let n = text.len();
            let nll: f64 = lp.by_ref().take(n).map(|x| -(x as f64)).sum();
            out.push((*i, n, nll));
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
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by(|&a, &b| texts[a].cmp(&texts[b]));
        let rows = pack(&order, 128, (usize::MAX, 4), bos, |i| &texts[i]);
        assert_eq!(rows.len(), 1, "four short texts fit one row");
        let row = &rows[0];
        // One start token for all; `Han er lege` once; `lærer`; `Katten sov`; text 3 adds
        // ` i Bergen` to text 0's `lege` (last tokens have no position).
        assert_eq!(row.len(), 1 + 3 + 1 + 2 + 2);
        for (i, path, labels) in &row.texts {
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
        let narrow = pack(&order, 6, (usize::MAX, 4), bos, |i| &texts[i]);
        assert!(narrow.iter().all(|r| r.len() <= 6));
        assert_eq!(narrow.iter().map(|r| r.texts.len()).sum::<usize>(), 4);
        let one = pack(&order, 6, (1, 4), bos, |i| &texts[i]);
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
        let text = |i: usize| texts[i].as_slice();
        let wide = pack(&order, 32, (usize::MAX, 10), 0, text);
        assert_eq!(wide.iter().map(Row::len).collect::<Vec<_>>(), [29, 13]);
        let even = balanced(wide, &order, 32, 0, text);
        assert_eq!(even.iter().map(Row::len).collect::<Vec<_>>(), [21, 21]);
        let mut indices: Vec<usize> = even
            .iter()
            .flat_map(|r| r.texts.iter().map(|t| t.0))
            .collect();
        indices.sort_unstable();
        assert_eq!(indices, order, "every text is still there, once");
    }
}
