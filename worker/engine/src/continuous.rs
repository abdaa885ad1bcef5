//! Continuous batching for greedy and sampled decoding: up to `slots` sequences in flight; a
//! row leaves the batch the moment it stops (EOS, a stop string, its own token limit) and the
//! next prompt is admitted into the freed slot. A static batch runs until its longest row;
//! here no slot idles while prompts wait.
//!
//! The batch's KV cache has one row per slot, all ending at the same position. A prompt is
//! prefilled alone and its keys and values are put into a free slot, ending there (the
//! positions before them are masked), so no other row is copied. Each row keeps its own
//! positions and sampler (seeded with the config's seed), so its tokens are those of
//! generating it alone (`generate` with that one prompt). When no prompt waits, the cache
//! shrinks to the rows in flight as they halve; padding no row needs is trimmed when it is
//! half the cache. Beam search stays static (`generate`).

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
    /// Cache position of its first key (the positions before are not its own).
    start: usize,
    /// Position id of its next token.
    next_pos: u32,
    /// Its sampler.
    rng: ChaCha8Rng,
    /// Logits of its next token.
    logits: Vec<f32>,
}

/// A prompt fitted to the context, prefilled alone: its row and its own cache.
fn prefill(
    model: &LoadedModel,
    index: usize,
    request: &Request,
    cfg: &GenerationConfig,
    pad: u32,
) -> Result<std::result::Result<(Row, KvCache), Generation>> {
    let row_cfg = GenerationConfig {
        max_new_tokens: request.max_new_tokens.or(cfg.max_new_tokens),
        ..cfg.clone()
    };
    let fitted = fit(model, std::slice::from_ref(&request.prompt), &row_cfg)?;
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
        return Ok(Err(g));
    }
    let step = prefill_step(std::slice::from_ref(prompt), prompt.len(), pad);
    let mut own = model.cache_for(prompt.len());
    let logits = last_logits(model, &step, &mut own)?.remove(0);
    Ok(Ok((
        Row {
            index,
            prompt_tokens: prompt.len(),
            prompt_dropped: fitted.dropped[0],
            steps: fitted.steps,
            limit: fitted.limit,
            seq: prompt.clone(),
            generated: Vec::with_capacity(fitted.steps),
            start: 0,
            next_pos: prompt.len() as u32,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            logits,
        },
        own,
    )))
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
    let mut flight = Flight::new(model, requests, cfg, slots);
    loop {
        flight.admit(&mut done)?;
        if flight.empty() {
            break;
        }
        flight.take_tokens(&mut done)?;
        if flight.empty() {
            flight.cache = None;
            continue;
        }
        flight.decode_step()?;
    }
    flight
        .out
        .into_iter()
        .map(|g| g.ok_or_else(|| EngineError::Generation("a prompt was left ungenerated".into())))
        .collect()
}

/// The rows in flight of a continuous batch, their shared KV cache, and the prompts waiting.
struct Flight<'a> {
    model: &'a LoadedModel,
    requests: &'a [Request],
    cfg: &'a GenerationConfig,
    /// The token of empty slots and of a row that has generated nothing yet.
    pad: u32,
    /// The finished generations, by request.
    out: Vec<Option<Generation>>,
    /// The requests not admitted yet.
    pending: std::ops::Range<usize>,
    /// The longest prompt: every prompt fits before the cache's end at its first positions.
    longest: usize,
    /// The most new tokens any request may take.
    most_steps: usize,
    /// A row per slot (`None`: free).
    rows: Vec<Option<Row>>,
    cache: Option<KvCache>,
}

impl<'a> Flight<'a> {
    fn new(
        model: &'a LoadedModel,
        requests: &'a [Request],
        cfg: &'a GenerationConfig,
        slots: usize,
    ) -> Flight<'a> {
        Flight {
            model,
            requests,
            cfg,
            pad: model.eos_ids.first().copied().unwrap_or(0),
            out: vec![None; requests.len()],
            pending: 0..requests.len(),
            longest: requests
                .iter()
                .map(|r| r.prompt.len().min(model.max_positions))
                .max()
                .unwrap_or(0),
            most_steps: requests
                .iter()
                .map(|r| r.max_new_tokens.or(cfg.max_new_tokens).unwrap_or(20))
                .max()
                .unwrap_or(0),
            rows: (0..slots.max(1)).map(|_| None).collect(),
            cache: None,
        }
    }

    /// No row is in flight.
    fn empty(&self) -> bool {
        self.rows.iter().all(Option::is_none)
    }

    /// Admit waiting prompts into the free slots, each prefilled alone.
    fn admit(&mut self, done: &mut impl FnMut(usize, &Generation) -> Result<()>) -> Result<()> {
        for slot in 0..self.rows.len() {
            while self.rows[slot].is_none() {
                let Some(index) = self.pending.next() else {
                    break;
                };
                match prefill(self.model, index, &self.requests[index], self.cfg, self.pad)? {
                    Err(g) => {
                        done(index, &g)?;
                        self.out[index] = Some(g);
                    }
                    Ok((mut row, own)) => {
                        let c = match self.cache.as_mut() {
                            Some(c) => c,
                            None => self.cache.insert(KvCache::padded_like(
                                &own,
                                self.rows.len(),
                                self.longest,
                                self.longest + self.most_steps + 1,
                            )?),
                        };
                        c.put_row(slot, &own)?;
                        row.start = c.len() - row.prompt_tokens;
                        self.rows[slot] = Some(row);
                    }
                }
            }
        }
        Ok(())
    }

    /// Every row in flight takes its next token; the rows that stop leave.
    fn take_tokens(
        &mut self,
        done: &mut impl FnMut(usize, &Generation) -> Result<()>,
    ) -> Result<()> {
        let (model, cfg) = (self.model, self.cfg);
        for slot in self.rows.iter_mut() {
            let Some(row) = slot.as_mut() else { continue };
            let (_, stop) = next_token(
                model,
                cfg,
                &mut row.logits,
                &row.seq,
                &mut row.generated,
                &mut row.rng,
            )?;
            if let Some(stop) = stop.or((row.generated.len() == row.steps).then_some(row.limit))
                && let Some(row) = slot.take()
            {
                let g = finish(
                    model,
                    cfg,
                    row.generated,
                    stop,
                    row.prompt_tokens,
                    row.prompt_dropped,
                )?;
                done(row.index, &g)?;
                self.out[row.index] = Some(g);
            }
        }
        Ok(())
    }

    /// One decoding step for every slot (an empty one attends to its own token only), after
    /// fitting the cache to the rows in flight.
    fn decode_step(&mut self) -> Result<()> {
        let c = self
            .cache
            .as_mut()
            .ok_or_else(|| EngineError::Generation("rows in flight without a cache".into()))?;
        if self.pending.is_empty() {
            shrink(c, &mut self.rows, &self.model.device)?;
        }
        // A waiting prompt must still fit before the cache's end.
        let room = if self.pending.is_empty() {
            0
        } else {
            self.longest
        };
        trim(c, &mut self.rows, room)?;
        let len = c.len();
        let mut step = Step {
            ids: Vec::with_capacity(self.rows.len()),
            positions: Vec::with_capacity(self.rows.len()),
            key_mask: Vec::with_capacity(self.rows.len()),
        };
        for slot in self.rows.iter_mut() {
            let mut mask = vec![0u8; len + 1];
            match slot {
                Some(row) => {
                    let t = *row.generated.last().unwrap_or(&self.pad);
                    row.seq.push(t);
                    mask[row.start..].fill(1);
                    step.ids.push(vec![t]);
                    step.positions.push(vec![row.next_pos]);
                    row.next_pos += 1;
                }
                None => {
                    mask[len] = 1;
                    step.ids.push(vec![self.pad]);
                    step.positions.push(vec![0]);
                }
            }
            step.key_mask.push(mask);
        }
        let logits = last_logits(self.model, &step, c)?;
        for (slot, logits) in self.rows.iter_mut().zip(logits) {
            if let Some(row) = slot.as_mut() {
                row.logits = logits;
            }
        }
        Ok(())
    }
}

/// With no prompt waiting, keep only the rows in flight once they are half the slots or fewer.
fn shrink(
    cache: &mut KvCache,
    rows: &mut Vec<Option<Row>>,
    device: &candle_core::Device,
) -> Result<()> {
    let live: Vec<u32> = (0..rows.len() as u32)
        .filter(|&i| rows[i as usize].is_some())
        .collect();
    if live.len() * 2 > rows.len() || live.len() == rows.len() {
        return Ok(());
    }
    cache.select_rows(&Tensor::new(live.as_slice(), device)?)?;
    rows.retain(Option::is_some);
    Ok(())
}

/// Drop the cache positions before every row's first key once they are half the cache,
/// keeping at least `keep` positions.
fn trim(cache: &mut KvCache, rows: &mut [Option<Row>], keep: usize) -> Result<()> {
    let unused = rows
        .iter()
        .flatten()
        .map(|r| r.start)
        .min()
        .unwrap_or(0)
        .min(cache.len().saturating_sub(keep));
    if unused == 0 || unused * 2 < cache.len() {
        return Ok(());
    }
    cache.trim_front(unused)?;
    for r in rows.iter_mut().flatten() {
        r.start -= unused;
    }
    Ok(())
}
