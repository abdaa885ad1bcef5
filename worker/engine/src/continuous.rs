//! Continuous batching for greedy and sampled decoding: up to `slots` sequences in flight; a
//! row leaves the batch the moment it stops (EOS, a stop string, its own token limit) and the
//! next prompt is admitted into the freed slot. A static batch runs until its longest row;
//! here no slot idles while prompts wait.
//!
//! Each prompt is prefilled alone and joins the running batch with its own positions, key
//! mask (the batch's cache is aligned to the end, shorter rows left-padded and masked) and
//! sampler seeded with the config's seed, so its tokens are those of generating it alone
//! (`generate` with that one prompt). Beam search stays static (`generate`).

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::{EngineError, Result};
use super::generate::{
    Generation, GenerationConfig, StopReason, finish, fit, last_logits, next_token, prefill_step,
};
use super::layers::KvCache;
use super::model::{LoadedModel, Step};

/// One prompt to continue, with its own limit on new tokens (`None`: the config's).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Token ids without special tokens.
    pub prompt: Vec<u32>,
    /// Most new tokens for this prompt.
    pub max_new_tokens: Option<usize>,
}

/// A sequence in flight.
struct Row {
    /// Index of its request.
    index: usize,
    /// Prompt tokens used and dropped.
    prompt_tokens: usize,
    prompt_dropped: usize,
    /// New tokens allowed, and why it stops when it gets them all.
    steps: usize,
    limit: StopReason,
    /// Prompt and tokens so far (for the processors).
    seq: Vec<u32>,
    /// Tokens generated.
    generated: Vec<u32>,
    /// Which cached keys are its own (the rest is padding).
    key_mask: Vec<u8>,
    /// Position of its next token.
    next_pos: u32,
    /// Its sampler.
    rng: ChaCha8Rng,
    /// Logits of its next token.
    logits: Vec<f32>,
}

/// Generate a continuation of each request with up to `slots` sequences in flight, calling
/// `done(index, generation)` as each finishes (in the order they finish); returns them all in
/// request order. Beam search is refused (use [`super::generate::generate`]).
pub fn generate_continuous(
    model: &LoadedModel,
    requests: &[Request],
    cfg: &GenerationConfig,
    slots: usize,
    mut done: impl FnMut(usize, &Generation) -> Result<()>,
) -> Result<Vec<Generation>> {
    cfg.validate()?;
    if cfg.num_beams > 1 {
        return Err(EngineError::Generation(
            "continuous batching does not do beam search; generate beams in static batches".into(),
        ));
    }
    let slots = slots.max(1);
    let pad = model.eos_ids.first().copied().unwrap_or(0);
    let mut out: Vec<Option<Generation>> = vec![None; requests.len()];
    let mut pending = 0..requests.len();
    let mut active: Vec<Row> = Vec::with_capacity(slots);
    let mut cache: Option<KvCache> = None;
    loop {
        // Admit waiting prompts into the free slots, each prefilled alone.
        while active.len() < slots {
            let Some(index) = pending.next() else { break };
            let r = &requests[index];
            let row_cfg = GenerationConfig {
                max_new_tokens: r.max_new_tokens.or(cfg.max_new_tokens),
                ..cfg.clone()
            };
            let fitted = fit(model, std::slice::from_ref(&r.prompt), &row_cfg)?;
            let prompt = &fitted.rows[0];
            if fitted.steps == 0 {
                let g = finish(
                    model,
                    cfg,
                    vec![],
                    fitted.limit,
                    prompt.len(),
                    fitted.dropped[0],
                )?;
                done(index, &g)?;
                out[index] = Some(g);
                continue;
            }
            let step = prefill_step(std::slice::from_ref(prompt), prompt.len(), pad);
            let mut own = model.cache_for(prompt.len() + fitted.steps);
            let logits = last_logits(model, &step, &mut own)?.remove(0);
            let mut row = Row {
                index,
                prompt_tokens: prompt.len(),
                prompt_dropped: fitted.dropped[0],
                steps: fitted.steps,
                limit: fitted.limit,
                seq: prompt.clone(),
                generated: Vec::with_capacity(fitted.steps),
                key_mask: vec![1; prompt.len()],
                next_pos: prompt.len() as u32,
                rng: ChaCha8Rng::seed_from_u64(cfg.seed),
                logits,
            };
            cache = Some(match cache.take() {
                None => own,
                Some(c) => {
                    let len = c.len().max(own.len());
                    for a in &mut active {
                        left_pad(&mut a.key_mask, len);
                    }
                    left_pad(&mut row.key_mask, len);
                    let room = active
                        .iter()
                        .chain(std::iter::once(&row))
                        .map(|a| a.steps - a.generated.len())
                        .max()
                        .unwrap_or(0);
                    c.stack(&own, len + room)?
                }
            });
            active.push(row);
        }
        if active.is_empty() {
            break;
        }
        // Every row in flight takes its next token; the rows that stop leave.
        let mut keep = Vec::with_capacity(active.len());
        let mut left = Vec::new();
        for (i, row) in active.iter_mut().enumerate() {
            let (_, stop) = next_token(
                model,
                cfg,
                &mut row.logits,
                &row.seq,
                &mut row.generated,
                &mut row.rng,
            )?;
            let stop = stop.or((row.generated.len() == row.steps).then_some(row.limit));
            match stop {
                Some(stop) => left.push((i, stop)),
                None => keep.push(i as u32),
            }
        }
        if !left.is_empty() {
            for &(i, stop) in left.iter().rev() {
                let row = active.remove(i);
                let g = finish(
                    model,
                    cfg,
                    row.generated,
                    stop,
                    row.prompt_tokens,
                    row.prompt_dropped,
                )?;
                done(row.index, &g)?;
                out[row.index] = Some(g);
            }
            if active.is_empty() {
                cache = None;
                continue;
            }
            if let Some(c) = cache.as_mut() {
                c.select_rows(&Tensor::new(keep.as_slice(), &model.device)?)?;
                // Padding that no row in flight needs any more.
                let unused = active
                    .iter()
                    .map(|r| r.key_mask.iter().take_while(|&&m| m == 0).count())
                    .min()
                    .unwrap_or(0);
                c.trim_front(unused)?;
                for r in &mut active {
                    r.key_mask.drain(..unused);
                }
            }
        }
        // One decoding step for the rows in flight.
        let mut step = Step {
            ids: Vec::with_capacity(active.len()),
            positions: Vec::with_capacity(active.len()),
            key_mask: Vec::with_capacity(active.len()),
        };
        for row in &mut active {
            let t = *row.generated.last().unwrap_or(&pad);
            row.seq.push(t);
            row.key_mask.push(1);
            step.ids.push(vec![t]);
            step.positions.push(vec![row.next_pos]);
            step.key_mask.push(row.key_mask.clone());
            row.next_pos += 1;
        }
        let c = cache
            .as_mut()
            .ok_or_else(|| EngineError::Generation("rows in flight without a cache".into()))?;
        for (row, logits) in active.iter_mut().zip(last_logits(model, &step, c)?) {
            row.logits = logits;
        }
    }
    out.into_iter()
        .map(|g| g.ok_or_else(|| EngineError::Generation("a prompt was left ungenerated".into())))
        .collect()
}

/// Prefix `mask` with zeros up to `len` keys.
fn left_pad(mask: &mut Vec<u8>, len: usize) {
    if mask.len() < len {
        let mut m = vec![0; len - mask.len()];
        m.append(mask);
        *mask = m;
    }
}
