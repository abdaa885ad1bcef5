//! lm-evaluation-harness tasks run through the engine as lm-eval 0.4.13's `HFLM` runs them.
//! `loglikelihood`: the text tokenized as its `tok_encode` does (the tokenizer's special
//! tokens added, unless the text begins with the start token's text), the pair split as its
//! `_encode_pair` splits it, an empty context replaced by the prefix token, and the context
//! cut from the left to fit the model; only the continuation's tokens are scored, with
//! whether each was the most likely token (`is_greedy`). `generate_until`: its generation
//! arguments normalised as lm-eval does, the context cut from the left to leave room for the
//! new tokens, the text cut before the first stop string. A run's documents and requests are
//! built once ([`Prepared`]), a sample stored per document, and the metrics computed by
//! `nlebench-harness` from the stored responses.

use engine::{
    BatchSize, ContinuationScore, EngineError, GenerationConfig, LoadedModel, Scoring,
    continuation_logprobs, generate,
};
use metrics::bootstrap::Bootstrap;
use sha2::{Digest, Sha256};
use spec::LmEvalTask;
use store::{MetricValue, NewSample, entities::sample};

use super::conversation::ChatPrompting;
use super::{Batch, TaskError};
use crate::data::Table;
use crate::data::lmeval_tasks::TaskData;
use chat::{ChatTemplate, Message};

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

/// The windows lm-eval's `loglikelihood_rolling` scores a text in (`get_rolling_token_windows`
/// with a context of one token, made disjoint): the first `limit` tokens after the prefix
/// token, then each next `limit` tokens after as many of the tokens before them as fit.
fn rolling_windows(tokens: &[u32], prefix: u32, limit: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    if tokens.is_empty() {
        return vec![];
    }
    let first = limit.min(tokens.len());
    let mut out = vec![(vec![prefix], tokens[..first].to_vec())];
    let mut predicted = first;
    while predicted < tokens.len() {
        let len = (tokens.len() - predicted).min(limit);
        let end = predicted + len;
        // `[end - limit - 1, end - 1)` made disjoint from the predicted `[end - len, end)`.
        let context = tokens[end - limit - 1..end - len].to_vec();
        out.push((context, tokens[end - len..end].to_vec()));
        predicted = end;
    }
    out
}

/// Each text's log-likelihood as lm-eval's `loglikelihood_rolling` computes it: the text
/// tokenized as `tok_encode` does and scored in windows of the context limit, each token once.
pub fn rolling_loglikelihoods(
    model: &LoadedModel,
    texts: &[&str],
    scoring: &Scoring,
) -> Result<Vec<f64>, EngineError> {
    let limit = scoring.limit(model);
    let mut pairs = Vec::new();
    let mut windows = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let w = rolling_windows(&encode(model, text)?, model.bos_id, limit);
        if w.is_empty() {
            return Err(EngineError::EmptyText { index: i });
        }
        windows.push(w.len());
        pairs.extend(w);
    }
    let mut scores = continuation_logprobs(model, &pairs, scoring)?.into_iter();
    Ok(windows
        .into_iter()
        .map(|n| scores.by_ref().take(n).map(|s| s.logprob).sum())
        .collect())
}

/// An lm-eval task ready to run: its documents and every request lm-eval builds for them, in
/// (document, index) order. Built once per run on a worker: a document's few-shot examples
/// depend on the draws for the documents before it.
pub struct Prepared {
    /// The task with its documents.
    pub task: harness::Task,
    /// Every request of the first documents (the run's limit).
    pub requests: Vec<harness::Request>,
    /// The requests of each document.
    by_doc: Vec<std::ops::Range<usize>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("task", &self.task.config.task)
            .field("docs", &self.by_doc.len())
            .field("requests", &self.requests.len())
            .finish()
    }
}

/// The keys of a task file as read, as JSON (what the manifest records and the fingerprint
/// hashes).
pub fn config_json(map: &harness::yaml::Map) -> serde_json::Value {
    serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// The task `l` read again from its folders: the reference of its file (with the overrides of
/// the group that named it), and its configuration, which must be the one recorded at
/// submission.
fn reread(l: &LmEvalTask) -> Result<harness::TaskConfig, TaskError> {
    let index = harness::TaskIndex::build(&l.include)?;
    let named = l.group.as_deref().unwrap_or(&l.task);
    let r = index
        .expand(named)?
        .into_iter()
        .find(|r| r.name == l.task)
        .ok_or_else(|| {
            TaskError::Request(format!(
                "lm-eval task `{}` is no longer under `{named}` in {}",
                l.task,
                folders(&l.include)
            ))
        })?;
    let map = harness::task_map(&r)?;
    if config_json(&map) != l.config {
        return Err(TaskError::Request(format!(
            "lm-eval task `{}`: {} changed since the run was submitted; its results would not be the submitted task's\n  fix: submit the sweep again (the changed task is a new run)",
            l.task,
            r.file.display()
        )));
    }
    Ok(harness::TaskConfig::from_map(&map, r.file)?)
}

fn folders(include: &[std::path::PathBuf]) -> String {
    include
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task `l` with its documents and the requests of its first `limit` documents, with
/// `shots` few-shot examples (as lm-eval decides: the task file's 0 stands; the file's number
/// when `None`), drawn with lm-eval's default seed; the prompts through the model's chat
/// template where `chat` is given (lm-eval's `--apply_chat_template`).
pub fn prepare(
    l: &LmEvalTask,
    shots: Option<u32>,
    limit: Option<u64>,
    data: &TaskData,
    chat: Option<&ChatPrompting>,
) -> Result<Prepared, TaskError> {
    let config = reread(l)?;
    let shots = config.shots(shots.map(|k| k as usize));
    let task = harness::Task::load(config, data, shots)?;
    let limit = limit.map(|n| n as usize);
    let requests = requests(&task, shots, harness::DEFAULT_FEWSHOT_SEED, limit, chat)?;
    let docs = task.docs.len().min(limit.unwrap_or(usize::MAX));
    let mut by_doc = vec![0..0; docs];
    let mut start = 0;
    while start < requests.len() {
        let doc = requests[start].doc_id;
        let end = start
            + requests[start..]
                .iter()
                .take_while(|r| r.doc_id == doc)
                .count();
        by_doc[doc] = start..end;
        start = end;
    }
    Ok(Prepared {
        task,
        requests,
        by_doc,
    })
}

/// `task`'s requests (`Task::requests`), the prompts through `chat`'s template where given.
pub fn requests(
    task: &harness::Task,
    shots: usize,
    seed: i64,
    limit: Option<usize>,
    chat: Option<&ChatPrompting>,
) -> Result<Vec<harness::Request>, harness::Error> {
    let Some(c) = chat else {
        return task.requests(shots, seed, limit);
    };
    let render = |turns: &[(&str, &str)], open: bool| render_chat(&c.template, turns, open);
    let chat = harness::Chat {
        system: c.system_prompt.as_deref(),
        multiturn: c.fewshot_as_multiturn,
        render: &render,
    };
    task.requests_with(shots, seed, limit, Some(&chat))
}

/// `turns` through `template` as lm-eval's `HFLM.apply_chat_template` renders them: opening
/// the assistant's turn (`open`), else continuing the final turn; a conversation the template
/// refuses is rendered again without its system turn.
fn render_chat(
    template: &ChatTemplate,
    turns: &[(&str, &str)],
    open: bool,
) -> Result<String, String> {
    let go = |messages: &[Message]| {
        if open {
            template.render(messages, true)
        } else {
            template.render_continuing(messages)
        }
    };
    let messages: Vec<Message> = turns.iter().map(|(r, c)| Message::new(r, *c)).collect();
    match go(&messages) {
        Err(e) if e.is_template_error() => {
            let without: Vec<Message> = messages
                .into_iter()
                .filter(|m| m.role != "system")
                .collect();
            go(&without).map_err(|e| e.to_string())
        }
        r => r.map_err(|e| e.to_string()),
    }
}

impl Prepared {
    /// The documents the run evaluates, as rows (the run's examples).
    pub fn table(&self) -> Table {
        Table {
            columns: vec![],
            rows: self.task.docs[..self.by_doc.len()]
                .iter()
                .map(|d| d.as_object().cloned().unwrap_or_default())
                .collect(),
            path: self.task.config.file.clone(),
        }
    }

    /// The number of documents the run evaluates.
    pub fn docs(&self) -> usize {
        self.by_doc.len()
    }

    /// Where document `d`'s requests are in [`Prepared::requests`].
    pub fn by_doc(&self, d: usize) -> std::ops::Range<usize> {
        self.by_doc[d].clone()
    }
}

fn text_argument(r: &harness::Request, i: usize) -> Result<&str, TaskError> {
    r.arguments
        .get(i)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| TaskError::Request(format!("request {r:?} has no text argument {i}")))
}

/// lm-eval's generation arguments (`normalize_gen_kwargs`, `handle_stop_sequences`): the stop
/// strings with the end-of-text token's text added, at most `max_gen_toks` new tokens (256 by
/// default; `max_new_tokens`, `max_tokens`, `max_completion_tokens` alike), sampling only
/// with `do_sample` and a positive temperature. Returns the stop strings too.
fn generation_config(
    model: &LoadedModel,
    kwargs: &serde_json::Value,
    seed: u64,
) -> Result<(GenerationConfig, Vec<String>), TaskError> {
    let bad = |what: &str| TaskError::Request(format!("generation_kwargs: {what}: {kwargs}"));
    let mut until: Vec<String> = match kwargs.get("until") {
        None | Some(serde_json::Value::Null) => vec![],
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`until` is not a list of texts"))?,
        Some(_) => return Err(bad("`until` is not a text or a list")),
    };
    let eos = model
        .eos_ids
        .first()
        .and_then(|&id| model.tokenizer.id_to_token(id));
    if let Some(eos) = eos.filter(|e| !until.contains(e)) {
        until.push(eos);
    }
    let max_gen_toks = [
        "max_gen_toks",
        "max_new_tokens",
        "max_tokens",
        "max_completion_tokens",
    ]
    .iter()
    .find_map(|k| kwargs.get(*k).and_then(serde_json::Value::as_u64))
    .unwrap_or(256) as usize;
    let do_sample = kwargs
        .get("do_sample")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let temperature = kwargs
        .get("temperature")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(if do_sample { 1.0 } else { 0.0 });
    let sample = do_sample && temperature > 0.0;
    Ok((
        GenerationConfig {
            max_new_tokens: Some(max_gen_toks),
            do_sample: sample,
            temperature: if sample { temperature } else { 1.0 },
            stop_strings: until.clone(),
            seed,
            ..GenerationConfig::default()
        },
        until,
    ))
}

/// Each `generate_until` request's text as lm-eval's `HFLM` gives it: the context tokenized as
/// its `tok_batch_encode` does and cut from the left to leave room for `max_gen_toks`, the
/// continuation decoded without special tokens and cut before the first stop string.
pub fn generate_until(
    model: &LoadedModel,
    requests: &[(&str, &serde_json::Value)],
    seed: u64,
) -> Result<Vec<String>, TaskError> {
    let mut out = vec![String::new(); requests.len()];
    // Requests with the same arguments are generated together (a task's are all alike).
    let mut groups: Vec<(&serde_json::Value, Vec<usize>)> = Vec::new();
    for (i, (_, kwargs)) in requests.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| k == kwargs) {
            Some((_, members)) => members.push(i),
            None => groups.push((kwargs, vec![i])),
        }
    }
    for (kwargs, members) in groups {
        let (cfg, until) = generation_config(model, kwargs, seed)?;
        let max_new = cfg.max_new_tokens.unwrap_or(256);
        let room = model.max_positions.checked_sub(max_new).filter(|&r| r > 0).ok_or_else(|| {
            TaskError::Request(format!(
                "generation_kwargs: max_gen_toks {max_new} leaves no room for the context in the model's {} positions (lm-eval refuses it too)\n  fix: evaluate a model with a longer context, or lower max_gen_toks in the task file",
                model.max_positions
            ))
        })?;
        let prompts = members
            .iter()
            .map(|&i| {
                let ids = encode(model, requests[i].0)?;
                Ok(ids[ids.len().saturating_sub(room)..].to_vec())
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        for (&i, g) in members.iter().zip(generate(model, &prompts, &cfg)?) {
            let mut text = g.text;
            for term in until.iter().filter(|t| !t.is_empty()) {
                if let Some(at) = text.find(term.as_str()) {
                    text.truncate(at);
                }
            }
            out[i] = text;
        }
    }
    Ok(out)
}

/// Run the batch's documents: every log-likelihood request of them in one scoring pass, the
/// generations in batches, and a sample per document with its responses.
pub fn run(b: &Batch, p: &Prepared) -> Result<Vec<NewSample>, TaskError> {
    let (mut pairs, mut rolling, mut gens) = (Vec::new(), Vec::new(), Vec::new());
    for &d in b.indices {
        for r in &p.requests[p.by_doc[d].clone()] {
            match r.request_type {
                "generate_until" => {
                    let kwargs = r.arguments.get(1).unwrap_or(&serde_json::Value::Null);
                    gens.push((text_argument(r, 0)?, kwargs));
                }
                "loglikelihood_rolling" => rolling.push(text_argument(r, 0)?),
                _ => pairs.push((text_argument(r, 0)?, text_argument(r, 1)?)),
            }
        }
    }
    let scoring = Scoring {
        batch: BatchSize::of_setting(b.opts.batch_size, b.opts.memory_budget_mb),
        max_tokens: b.opts.max_tokens,
        ..Scoring::default()
    };
    let mut scores = loglikelihoods(b.model, &pairs, &scoring)?.into_iter();
    let mut rolled = rolling_loglikelihoods(b.model, &rolling, &scoring)?.into_iter();
    let mut texts = generate_until(b.model, &gens, b.opts.seed)?.into_iter();
    let names = b.task.lm_eval.as_ref().map(|l| l.metrics.as_slice());
    b.indices
        .iter()
        .map(|&d| {
            let requests = &p.requests[p.by_doc[d].clone()];
            let kind = requests.first().map_or("", |r| r.request_type);
            let (responses, truncated): (Vec<serde_json::Value>, usize) = if kind
                == "generate_until"
            {
                let got = texts.by_ref().take(requests.len());
                (got.map(serde_json::Value::from).collect(), 0)
            } else if kind == "loglikelihood_rolling" {
                let got = rolled.by_ref().take(requests.len());
                (got.map(serde_json::Value::from).collect(), 0)
            } else {
                let got: Vec<ContinuationScore> = scores.by_ref().take(requests.len()).collect();
                let truncated = got.iter().map(|s| s.truncated).max().unwrap_or(0);
                let responses = got
                    .iter()
                    .map(|s| serde_json::json!([s.logprob, s.greedy]))
                    .collect();
                (responses, truncated)
            };
            sample(
                p,
                d,
                b.shard,
                responses,
                truncated,
                names.unwrap_or_default(),
            )
        })
        .collect()
}

/// The sample of document `d` with its `responses` (one per request): its prompt (the first
/// request's context), its output (the generated text, or the most likely choice), its
/// document, and in its data the responses, each request's
/// arguments (`null` for a context that is the prompt), the target, the filtered responses
/// (where the task filters) and each metric's value for the document ([`DocScores`]).
pub fn sample(
    p: &Prepared,
    d: usize,
    shard: i32,
    responses: Vec<serde_json::Value>,
    truncated: usize,
    names: &[(String, String)],
) -> Result<NewSample, TaskError> {
    let requests = &p.requests[p.by_doc[d].clone()];
    let output = match requests.first().map(|r| r.request_type) {
        Some("generate_until") => responses
            .first()
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
        // Of several continuations (multiple choice), the most likely one (the first of equals,
        // as lm-eval's argmax).
        _ if requests.len() > 1 => {
            let ll = |v: &serde_json::Value| v[0].as_f64().unwrap_or(f64::NEG_INFINITY);
            let mut best: Option<(usize, f64)> = None;
            for (k, r) in responses.iter().enumerate() {
                if best.is_none_or(|(_, b)| ll(r) > b) {
                    best = Some((k, ll(r)));
                }
            }
            best.and_then(|(k, _)| requests[k].arguments.get(1)?.as_str().map(str::to_string))
        }
        _ => None,
    };
    let prompt = requests
        .first()
        .and_then(|r| r.arguments.first())
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let arguments: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            let mut a = r.arguments.clone();
            if let Some(c) = a.first_mut()
                && c.as_str() == Some(prompt.as_str())
            {
                *c = serde_json::Value::Null;
            }
            serde_json::Value::Array(a)
        })
        .collect();
    let DocScores { values, filtered } = doc_scores(p, requests, &responses, names)?;
    let mut data = serde_json::json!({
        "responses": responses,
        "truncated": truncated,
        "arguments": arguments,
        "target": p.task.target(&p.task.docs[d])?,
        "values": values,
    });
    if filtered.len() > 1 || filtered.first().is_some_and(|(f, _)| f != "none") {
        data["filtered"] = serde_json::Value::Object(
            filtered
                .into_iter()
                .map(|(f, r)| (f, serde_json::json!(r)))
                .collect(),
        );
    }
    Ok(NewSample {
        idx: d as i64,
        shard,
        prompt,
        output,
        reference: Some(p.task.docs[d].to_string()),
        data,
    })
}

/// A stored response as the harness reads it.
fn response(r: &serde_json::Value) -> Option<harness::Response> {
    Some(match r {
        serde_json::Value::Array(pair) => {
            harness::Response::Loglikelihood(pair.first()?.as_f64()?, pair.get(1)?.as_bool()?)
        }
        serde_json::Value::String(text) => harness::Response::Text(text.clone()),
        v => harness::Response::Rolling(v.as_f64()?),
    })
}

/// One document's scores: what its sample keeps of them.
struct DocScores {
    /// Each metric that is a mean over documents: the document's value (what `compare`
    /// pairs), named as the task spec names its metrics.
    values: serde_json::Map<String, serde_json::Value>,
    /// Its responses through each filter.
    filtered: Vec<(String, Vec<harness::Response>)>,
}

/// Document `requests`' scores from their `responses` (`names`: spec name, harness key).
fn doc_scores(
    p: &Prepared,
    requests: &[harness::Request],
    responses: &[serde_json::Value],
    names: &[(String, String)],
) -> Result<DocScores, TaskError> {
    let responses = responses
        .iter()
        .map(response)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TaskError::Request(format!("a response is malformed: {responses:?}")))?;
    let scores = harness::score(&p.task, requests, &responses)?;
    let values = names
        .iter()
        .filter_map(|(name, key)| {
            let (_, v) = scores.per_doc.get(key)?.first()?;
            Some((name.clone(), (*v).into()))
        })
        .collect();
    Ok(DocScores {
        values,
        filtered: scores.filtered,
    })
}

/// The run's metrics from its stored samples, as lm-eval computes them from the same
/// responses (its filters, `process_results` and aggregations), named as the task spec lists
/// them; a metric that is a mean over documents has `boot`'s interval of that mean.
pub fn metrics(
    l: &LmEvalTask,
    p: &Prepared,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let mut by_idx: Vec<&sample::Model> = samples.iter().collect();
    by_idx.sort_by_key(|s| s.idx);
    let n = by_idx.len().min(p.docs());
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    for s in &by_idx[..n] {
        let data: serde_json::Value =
            serde_json::from_str(&s.data).map_err(|e| TaskError::Sample {
                idx: s.idx,
                message: format!("its data is not JSON: {e}"),
            })?;
        let bad = || TaskError::Sample {
            idx: s.idx,
            message: format!(
                "its responses are not a list of [log-likelihood, is_greedy], numbers or texts: {data}"
            ),
        };
        for r in data["responses"].as_array().ok_or_else(bad)? {
            responses.push(response(r).ok_or_else(bad)?);
        }
        // The requests as the run made them (its prompts, through a chat template where the
        // setting asked for one), in the task's structure.
        let d = usize::try_from(s.idx)
            .ok()
            .filter(|&d| d < p.docs())
            .ok_or_else(|| TaskError::Sample {
                idx: s.idx,
                message: format!("the task has {} documents", p.docs()),
            })?;
        let built = &p.requests[p.by_doc(d)];
        let stored = data["arguments"]
            .as_array()
            .filter(|a| a.len() == built.len());
        for (k, r) in built.iter().enumerate() {
            let mut r = r.clone();
            if let Some(a) = stored.and_then(|a| a[k].as_array()) {
                r.arguments = a
                    .iter()
                    .enumerate()
                    .map(|(j, v)| match v {
                        serde_json::Value::Null if j == 0 => serde_json::json!(s.prompt),
                        v => v.clone(),
                    })
                    .collect();
            }
            requests.push(r);
        }
    }
    let scores = harness::score(&p.task, &requests, &responses)?;
    Ok(l.metrics
        .iter()
        .filter_map(|(name, key)| {
            let value = *scores.values.get(key)?;
            let each: Option<Vec<f64>> = scores
                .per_doc
                .get(key)
                .map(|d| d.iter().map(|(_, v)| *v).collect());
            let ci = each.and_then(|v| boot.mean_interval(&v));
            Some(MetricValue {
                name: name.clone(),
                value,
                ci_low: ci.map(|c| c.0),
                ci_high: ci.map(|c| c.1),
                n: n as i64,
                version: harness::score::VERSION,
            })
        })
        .collect())
}

/// How many documents `l` evaluates and their identity (`sha256:` of their JSON, one per
/// line): the dataset revision of its runs.
pub fn documents(l: &LmEvalTask, data: &TaskData) -> Result<(u64, String), TaskError> {
    let task = harness::Task::load(reread(l)?, data, 0)?;
    let mut hash = Sha256::new();
    for d in &task.docs {
        hash.update(d.to_string().as_bytes());
        hash.update(b"\n");
    }
    Ok((
        task.docs.len() as u64,
        format!("sha256:{}", hex::encode(hash.finalize())),
    ))
}

/// The tasks an lm-eval name stands for in the folders `include`, for a sweep: each with its
/// configuration as read and its metrics (`acc` for lm-eval's `acc,none`; `METRIC,FILTER`
/// under another filter).
pub fn expand(name: &str, include: &[std::path::PathBuf]) -> Result<Vec<LmEvalTask>, TaskError> {
    let index = harness::TaskIndex::build(include)?;
    let mut out = Vec::new();
    for r in index.expand(name)? {
        let map = harness::task_map(&r)?;
        let config = harness::TaskConfig::from_map(&map, r.file.clone())?;
        let metrics = harness::metric_keys(&config)?
            .into_iter()
            .map(|k| {
                let name = k.strip_suffix(",none").unwrap_or(&k).to_string();
                (name, k)
            })
            .collect();
        out.push(LmEvalTask {
            group: (r.name != name).then(|| name.to_string()),
            task: r.name,
            include: include.to_vec(),
            file: r.file,
            config: config_json(&map),
            metrics,
        });
    }
    Ok(out)
}
