//! Text generation with transformers' semantics: greedy, seeded sampling (temperature,
//! top-k, top-p) and beam search; min/max new tokens, `max_length` counting the (padded)
//! prompt, `no_repeat_ngram_size`, repetition penalty, stop strings and EOS; batched with left
//! padding and a KV cache. Prompts longer than the context keep their last tokens, and the
//! number dropped is reported with the result.

use candle_core::{IndexOp, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::layers::KvCache;
use super::model::{LoadedModel, Step};

/// Decoding parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// Most new tokens (default 20 when neither this nor `max_length` is set).
    pub max_new_tokens: Option<usize>,
    /// Most tokens including the (left-padded) prompt, as transformers counts them.
    pub max_length: Option<usize>,
    /// EOS is suppressed until this many tokens are generated.
    pub min_new_tokens: usize,
    /// Sample instead of taking the most likely token.
    pub do_sample: bool,
    /// Sampling temperature.
    pub temperature: f64,
    /// Keep only the k most likely tokens when sampling.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens with this much probability when sampling.
    pub top_p: Option<f64>,
    /// Beam width (1: no beam search).
    pub num_beams: usize,
    /// Beam scores are divided by length^length_penalty.
    pub length_penalty: f64,
    /// Never repeat an n-gram of this size (0: off).
    pub no_repeat_ngram_size: usize,
    /// Penalty for tokens already in the sequence (1: off).
    pub repetition_penalty: f64,
    /// Stop when the generated text contains one of these; the text is cut after it.
    pub stop_strings: Vec<String>,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: None,
            max_length: None,
            min_new_tokens: 0,
            do_sample: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
            num_beams: 1,
            length_penalty: 1.0,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            stop_strings: vec![],
            seed: 0,
        }
    }
}

/// Why generation of a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-sequence token.
    Eos,
    /// A stop string appeared.
    StopString,
    /// `max_new_tokens` reached.
    MaxNewTokens,
    /// `max_length` reached.
    MaxLength,
    /// The model's context is full.
    Context,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated token ids (with the EOS token when generation ended on it).
    pub tokens: Vec<u32>,
    /// Decoded text (special tokens skipped), cut after a stop string.
    pub text: String,
    /// Why it ended.
    pub stop: StopReason,
    /// Prompt tokens used.
    pub prompt_tokens: usize,
    /// Prompt tokens dropped from the start to fit the context (truncation policy: keep the end).
    pub prompt_dropped: usize,
}

fn invalid(message: String) -> EngineError {
    EngineError::Generation(message)
}

impl GenerationConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.num_beams == 0 {
            return Err(invalid("num_beams must be at least 1".into()));
        }
        if self.do_sample && self.num_beams > 1 {
            return Err(invalid(
                "beam sampling (do_sample with num_beams > 1) is not supported".into(),
            ));
        }
        if self.do_sample && self.temperature <= 0.0 {
            return Err(invalid("temperature must be positive when sampling".into()));
        }
        if self.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(invalid("top_p must be between 0 and 1".into()));
        }
        if self.repetition_penalty <= 0.0 {
            return Err(invalid("repetition_penalty must be positive".into()));
        }
        Ok(())
    }
}

/// Prompts fitted to the context, and how many new tokens they may get.
pub(crate) struct Fitted {
    /// The prompts, cut to keep their end where they do not fit with the new tokens.
    pub rows: Vec<Vec<u32>>,
    /// Tokens dropped from the start of each prompt.
    pub dropped: Vec<usize>,
    /// The longest prompt (the others are left-padded to it).
    pub width: usize,
    /// New tokens allowed.
    pub steps: usize,
    /// Why generation stops when it runs `steps` tokens.
    pub limit: StopReason,
}

/// Fit `prompts` (padded to the longest) and `cfg`'s limits to the model's context.
pub(crate) fn fit(
    model: &LoadedModel,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> Result<Fitted> {
    let want_new = cfg.max_new_tokens.unwrap_or(if cfg.max_length.is_some() {
        usize::MAX
    } else {
        20
    });
    if want_new != usize::MAX && want_new >= model.max_positions {
        return Err(invalid(format!(
            "max_new_tokens {want_new} leaves no room for a prompt in the model's context of {} tokens",
            model.max_positions
        )));
    }
    // Truncation policy: keep the last tokens of a prompt that does not fit with the new tokens.
    let room = model
        .max_positions
        .saturating_sub(if want_new == usize::MAX { 1 } else { want_new });
    let mut dropped = Vec::with_capacity(prompts.len());
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let cut = p.len().saturating_sub(room);
            dropped.push(cut);
            p[cut..].to_vec()
        })
        .collect();
    if rows.iter().any(Vec::is_empty) {
        return Err(invalid("a prompt has no tokens".into()));
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let by_length = cfg
        .max_length
        .map_or(usize::MAX, |l| l.saturating_sub(width));
    let by_context = model.max_positions - width;
    let steps = want_new.min(by_length).min(by_context);
    let limit = if steps == want_new {
        StopReason::MaxNewTokens
    } else if steps == by_length {
        StopReason::MaxLength
    } else {
        StopReason::Context
    };
    Ok(Fitted {
        rows,
        dropped,
        width,
        steps,
        limit,
    })
}

/// Generate a continuation of each prompt (token ids without special tokens).
pub fn generate(
    model: &LoadedModel,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> Result<Vec<Generation>> {
    cfg.validate()?;
    if prompts.is_empty() {
        return Ok(vec![]);
    }
    let Fitted {
        rows,
        dropped,
        width,
        steps,
        limit,
    } = fit(model, prompts, cfg)?;
    let decoded = if cfg.num_beams > 1 {
        beam_search(model, &rows, width, steps, limit, cfg)?
    } else {
        sample_or_greedy(model, &rows, width, steps, limit, cfg)?
    };
    decoded
        .into_iter()
        .zip(rows.iter().zip(dropped))
        .map(|((tokens, stop), (row, dropped))| {
            finish(model, cfg, tokens, stop, row.len(), dropped)
        })
        .collect()
}

/// The generation of `tokens`: decoded, and cut after the first stop string.
pub(crate) fn finish(
    model: &LoadedModel,
    cfg: &GenerationConfig,
    tokens: Vec<u32>,
    stop: StopReason,
    prompt_tokens: usize,
    prompt_dropped: usize,
) -> Result<Generation> {
    let mut text = model.decode(&tokens)?;
    let mut stop = stop;
    if let Some((at, s)) = cfg
        .stop_strings
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
        .min()
    {
        text.truncate(at + s.len());
        stop = StopReason::StopString;
    }
    Ok(Generation {
        tokens,
        text,
        stop,
        prompt_tokens,
        prompt_dropped,
    })
}

/// The padded first step of a batch (left padding; positions count real tokens only).
pub(crate) fn prefill_step(rows: &[Vec<u32>], width: usize, pad: u32) -> Step {
    let mut step = Step {
        ids: vec![],
        positions: vec![],
        key_mask: vec![],
    };
    for r in rows {
        let p = width - r.len();
        step.ids.push(
            std::iter::repeat_n(pad, p)
                .chain(r.iter().copied())
                .collect(),
        );
        step.positions
            .push(std::iter::repeat_n(0, p).chain(0..r.len() as u32).collect());
        step.key_mask.push(
            std::iter::repeat_n(0, p)
                .chain(std::iter::repeat_n(1, r.len()))
                .collect(),
        );
    }
    step
}

/// Logits of the last position of each row, `[B][V]` in f32.
pub(crate) fn last_logits(
    model: &LoadedModel,
    step: &Step,
    cache: &mut KvCache,
) -> Result<Vec<Vec<f32>>> {
    let h = model.hidden(step, Some(cache))?;
    let t = h.dim(1)?;
    let last = h.i((.., t - 1..t, ..))?.contiguous()?;
    Ok(model.head(&last)?.squeeze(1)?.to_vec2()?)
}

/// Processors in transformers' order: repetition penalty, n-gram ban, minimum new tokens.
fn process(scores: &mut [f32], seq: &[u32], new: usize, eos: &[u32], cfg: &GenerationConfig) {
    if cfg.repetition_penalty != 1.0 {
        let p = cfg.repetition_penalty as f32;
        let mut seen = std::collections::HashSet::new();
        for &t in seq {
            if seen.insert(t) && (t as usize) < scores.len() {
                let s = &mut scores[t as usize];
                *s = if *s < 0.0 { *s * p } else { *s / p };
            }
        }
    }
    let n = cfg.no_repeat_ngram_size;
    if n > 0 && seq.len() + 1 >= n {
        let prefix = &seq[seq.len() + 1 - n..];
        for w in seq.windows(n) {
            if &w[..n - 1] == prefix {
                scores[w[n - 1] as usize] = f32::NEG_INFINITY;
            }
        }
    }
    if new < cfg.min_new_tokens {
        for &e in eos {
            if (e as usize) < scores.len() {
                scores[e as usize] = f32::NEG_INFINITY;
            }
        }
    }
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Temperature, top-k and top-p as transformers' warpers, then a draw from the softmax.
fn sample(scores: &mut [f32], cfg: &GenerationConfig, rng: &mut ChaCha8Rng) -> u32 {
    let t = cfg.temperature as f32;
    scores.iter_mut().for_each(|s| *s /= t);
    if let Some(k) = cfg.top_k.filter(|&k| k > 0 && k < scores.len()) {
        let mut sorted: Vec<f32> = scores.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        scores
            .iter_mut()
            .filter(|s| **s < kth)
            .for_each(|s| *s = f32::NEG_INFINITY);
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<f64> = scores.iter().map(|&s| ((s - max) as f64).exp()).collect();
    let z: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= z);
    if let Some(top_p) = cfg.top_p.filter(|&p| p < 1.0) {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
        let mut cum = 0.0;
        let last = order.len() - 1;
        for (rank, &i) in order.iter().enumerate() {
            cum += probs[i];
            if cum <= 1.0 - top_p && rank < last {
                probs[i] = 0.0;
            }
        }
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
    }
    let mut u: f64 = rng.random();
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i as u32;
        }
        u -= p;
    }
    argmax(scores)
}

fn sample_or_greedy(
    model: &LoadedModel,
    rows: &[Vec<u32>],
    width: usize,
    steps: usize,
    limit: StopReason,
    cfg: &GenerationConfig,
) -> Result<Vec<(Vec<u32>, StopReason)>> {
    let b = rows.len();
    let pad = model.eos_ids.first().copied().unwrap_or(0);
    let mut out: Vec<(Vec<u32>, StopReason)> = vec![(vec![], limit); b];
    if steps == 0 {
        return Ok(out);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut cache = model.cache_for(width + steps);
    let mut step = prefill_step(rows, width, pad);
    let mut seqs = step.ids.clone();
    let mut key_mask = step.key_mask.clone();
    let mut next_pos: Vec<u32> = rows.iter().map(|r| r.len() as u32).collect();
    let mut done = vec![false; b];
    let mut logits = last_logits(model, &step, &mut cache)?;
    for n in 0..steps {
        let mut tokens = Vec::with_capacity(b);
        for row in 0..b {
            if done[row] {
                tokens.push(pad);
                continue;
            }
            let (t, stop) = next_token(
                model,
                cfg,
                &mut logits[row],
                &seqs[row],
                &mut out[row].0,
                &mut rng,
            )?;
            if let Some(stop) = stop {
                done[row] = true;
                out[row].1 = stop;
            }
            tokens.push(t);
        }
        if done.iter().all(|&d| d) || n + 1 == steps {
            break;
        }
        for row in 0..b {
            seqs[row].push(tokens[row]);
            key_mask[row].push(1);
        }
        step = Step {
            ids: tokens.iter().map(|&t| vec![t]).collect(),
            positions: next_pos.iter().map(|&p| vec![p]).collect(),
            key_mask: key_mask.clone(),
        };
        next_pos.iter_mut().for_each(|p| *p += 1);
        logits = last_logits(model, &step, &mut cache)?;
    }
    Ok(out)
}

/// The next token of a row from its logits `scores` (processed in place): drawn or the most
/// likely, appended to `generated`; with the reason the row stops there, if it does (EOS or a
/// stop string).
pub(crate) fn next_token(
    model: &LoadedModel,
    cfg: &GenerationConfig,
    scores: &mut [f32],
    seq: &[u32],
    generated: &mut Vec<u32>,
    rng: &mut ChaCha8Rng,
) -> Result<(u32, Option<StopReason>)> {
    process(scores, seq, generated.len(), &model.eos_ids, cfg);
    let t = if cfg.do_sample {
        sample(scores, cfg, rng)
    } else {
        argmax(scores)
    };
    generated.push(t);
    if model.eos_ids.contains(&t) {
        return Ok((t, Some(StopReason::Eos)));
    }
    if !cfg.stop_strings.is_empty() {
        let text = model.decode(generated)?;
        if cfg.stop_strings.iter().any(|s| text.contains(s.as_str())) {
            return Ok((t, Some(StopReason::StopString)));
        }
    }
    Ok((t, None))
}

/// Finished hypotheses of one prompt, best `k` kept (transformers' `BeamHypotheses`).
struct Hypotheses {
    k: usize,
    length_penalty: f64,
    beams: Vec<(f64, Vec<u32>, bool)>,
}

impl Hypotheses {
    fn add(&mut self, tokens: Vec<u32>, sum_logprobs: f64, generated_len: usize, eos: bool) {
        let score = sum_logprobs / (generated_len.max(1) as f64).powf(self.length_penalty);
        let worst = self.beams.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
        if self.beams.len() < self.k || score > worst {
            self.beams.push((score, tokens, eos));
            if self.beams.len() > self.k
                && let Some((i, _)) = self
                    .beams
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
            {
                self.beams.remove(i);
            }
        }
    }

    /// The best finished hypothesis, with EOS where it ended on it.
    fn best(self, model: &LoadedModel, limit: StopReason) -> Result<(Vec<u32>, StopReason)> {
        let (_, mut tokens, eos) = self
            .beams
            .into_iter()
            .max_by(|a, c| a.0.total_cmp(&c.0))
            .ok_or_else(|| EngineError::Generation("beam search kept no hypothesis".into()))?;
        if eos {
            tokens.push(model.eos_ids[0]);
            Ok((tokens, StopReason::Eos))
        } else {
            Ok((tokens, limit))
        }
    }

    fn is_done(&self, best_sum_logprobs: f64, generated: usize) -> bool {
        if self.beams.len() < self.k {
            return false;
        }
        let worst = self.beams.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
        worst >= best_sum_logprobs / (generated.max(1) as f64).powf(self.length_penalty)
    }
}

fn beam_search(
    model: &LoadedModel,
    rows: &[Vec<u32>],
    width: usize,
    steps: usize,
    limit: StopReason,
    cfg: &GenerationConfig,
) -> Result<Vec<(Vec<u32>, StopReason)>> {
    let k = cfg.num_beams;
    let b = rows.len();
    let pad = model.eos_ids.first().copied().unwrap_or(0);
    if steps == 0 {
        return Ok(vec![(vec![], limit); b]);
    }
    let expanded: Vec<Vec<u32>> = rows
        .iter()
        .flat_map(|r| std::iter::repeat_n(r.clone(), k))
        .collect();
    let mut cache = model.cache();
    let first = prefill_step(&expanded, width, pad);
    let mut beams = Beams {
        seqs: first.ids.clone(),
        key_mask: first.key_mask.clone(),
        next_pos: expanded.iter().map(|r| r.len() as u32).collect(),
        // Only the first beam of each prompt starts live, so the beams do not repeat.
        scores: (0..b * k)
            .map(|i| if i % k == 0 { 0.0 } else { -1e9 })
            .collect(),
    };
    let mut hyps: Vec<Hypotheses> = (0..b)
        .map(|_| Hypotheses {
            k,
            length_penalty: cfg.length_penalty,
            beams: vec![],
        })
        .collect();
    let mut done = vec![false; b];
    let mut logits = last_logits(model, &first, &mut cache)?;
    for n in 0..steps {
        let mut next: Vec<(usize, u32, f64)> = Vec::with_capacity(b * k);
        for p in 0..b {
            if done[p] {
                next.extend((0..k).map(|_| (p * k, pad, 0.0)));
                continue;
            }
            let cands = beams.candidates(model, &logits, p, k, n, cfg);
            next.extend(choose(
                model,
                &cands,
                &beams.seqs,
                &mut hyps[p],
                p,
                k,
                width,
                n,
            ));
            let best = cands.first().map_or(f64::NEG_INFINITY, |c| c.0);
            done[p] = hyps[p].is_done(best, n);
        }
        if done.iter().all(|&d| d) || n + 1 == steps {
            // Running beams (with the token just chosen) join the hypotheses at the end.
            for p in (0..b).filter(|&p| !done[p]) {
                for &(src, v, s) in &next[p * k..p * k + k] {
                    let mut toks = beams.seqs[src][width..].to_vec();
                    toks.push(v);
                    let len = toks.len();
                    hyps[p].add(toks, s, len, false);
                }
            }
            break;
        }
        let src: Vec<u32> = next.iter().map(|x| x.0 as u32).collect();
        cache.select_rows(&Tensor::new(src.as_slice(), &model.device)?)?;
        let step = beams.advance(&next);
        logits = last_logits(model, &step, &mut cache)?;
    }
    hyps.into_iter().map(|h| h.best(model, limit)).collect()
}

/// The running beams of a beam search, `k` rows per prompt.
struct Beams {
    /// Prompt and tokens so far.
    seqs: Vec<Vec<u32>>,
    /// Which keys are real (not left padding).
    key_mask: Vec<Vec<u8>>,
    /// Position of the next token.
    next_pos: Vec<u32>,
    /// Sum of log-probabilities.
    scores: Vec<f64>,
}

impl Beams {
    /// The 2k best continuations (score, beam, token) of prompt `p`'s beams, best first.
    fn candidates(
        &self,
        model: &LoadedModel,
        logits: &[Vec<f32>],
        p: usize,
        k: usize,
        n: usize,
        cfg: &GenerationConfig,
    ) -> Vec<(f64, usize, u32)> {
        let mut cands: Vec<(f64, usize, u32)> = Vec::with_capacity(k * 2 * k);
        for j in 0..k {
            let row = p * k + j;
            let mut lp = log_softmax(&logits[row]);
            process(&mut lp, &self.seqs[row], n, &model.eos_ids, cfg);
            // Only the 2k best continuations of each beam can be among the 2k best overall.
            let mut idx: Vec<usize> = (0..lp.len()).collect();
            let take = (2 * k).min(idx.len());
            idx.select_nth_unstable_by(take - 1, |&a, &c| lp[c].total_cmp(&lp[a]).then(a.cmp(&c)));
            for &v in &idx[..take] {
                cands.push((self.scores[row] + lp[v] as f64, j, v as u32));
            }
        }
        cands.sort_by(|a, c| c.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(c.1, c.2))));
        cands.truncate(2 * k);
        cands
    }

    /// Continue each beam from its source row `next[i].0` with token `next[i].1`; the step
    /// that feeds the new tokens.
    fn advance(&mut self, next: &[(usize, u32, f64)]) -> Step {
        self.seqs = next
            .iter()
            .map(|&(s, v, _)| {
                let mut q = self.seqs[s].clone();
                q.push(v);
                q
            })
            .collect();
        self.key_mask = next
            .iter()
            .map(|&(s, _, _)| {
                let mut m = self.key_mask[s].clone();
                m.push(1);
                m
            })
            .collect();
        self.next_pos = next.iter().map(|&(s, _, _)| self.next_pos[s] + 1).collect();
        self.scores = next.iter().map(|x| x.2).collect();
        Step {
            ids: next.iter().map(|x| vec![x.1]).collect(),
            positions: self.next_pos.iter().map(|&p| vec![p - 1]).collect(),
            key_mask: self.key_mask.clone(),
        }
    }
}

/// The k beams prompt `p` continues with, from its ranked candidates; a candidate ending in
/// EOS among the k best becomes a finished hypothesis instead.
#[allow(clippy::too_many_arguments)] // the beam search's state at one step, named
fn choose(
    model: &LoadedModel,
    cands: &[(f64, usize, u32)],
    seqs: &[Vec<u32>],
    hyps: &mut Hypotheses,
    p: usize,
    k: usize,
    width: usize,
    n: usize,
) -> Vec<(usize, u32, f64)> {
    let mut next = Vec::with_capacity(k);
    for (rank, &(s, j, v)) in cands.iter().enumerate() {
        if model.eos_ids.contains(&v) {
            if rank >= k {
                continue;
            }
            hyps.add(seqs[p * k + j][width..].to_vec(), s, n + 1, true);
        } else {
            next.push((p * k + j, v, s));
        }
        if next.len() == k {
            break;
        }
    }
    next
}

fn log_softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + v.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
    v.iter().map(|&x| x - lse).collect()
}
