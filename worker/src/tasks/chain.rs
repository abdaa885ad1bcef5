//! `chain`: generation in steps (the paper's CoT scenes). Each step's prompt reads the
//! example's columns and the outputs of earlier steps (`{STEP}`); a step with `each` runs
//! once per item of a list column (e.g. once per question). Steps are stored as soon as they
//! are computed (the handler writes them), so a resumed job computes only what is missing;
//! the sample, written after the last step, keeps every step, and its last step is scored like
//! `generation`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spec::{ChainStep, TaskSpec};
use store::{MetricValue, NewSample, NewStep, entities::sample};

use super::generation::{config, generate_all};
use super::{Batch, TaskError, prompt};
use crate::data::{Row, examples, text, value_text};
use metrics::bootstrap::Bootstrap;
use metrics::generation::text_metrics;

/// Stored steps by example index, step and item: (prompt, output).
pub type Stored = BTreeMap<i64, BTreeMap<i32, BTreeMap<i32, (String, String)>>>;

/// Index stored steps.
pub fn index(steps: Vec<NewStep>) -> Stored {
    let mut out = Stored::new();
    for s in steps {
        out.entry(s.idx)
            .or_default()
            .entry(s.step)
            .or_default()
            .insert(s.item, (s.prompt, s.output));
    }
    out
}

/// The items a step runs over for a row (one empty item for steps without `each`).
fn step_items(b: &Batch, row: usize, step: &ChainStep) -> Result<Vec<Row>, TaskError> {
    match &step.each {
        Some(list) => Ok(examples::items(b.table, row, list)?),
        None => Ok(vec![Row::new()]),
    }
}

/// How an earlier step reads in a later template: its outputs through `join` (with
/// `{output}` and the item's parts), concatenated; without `join`, joined by newlines.
fn earlier_text(
    b: &Batch,
    row: usize,
    step: &ChainStep,
    outputs: &BTreeMap<i32, (String, String)>,
) -> Result<String, TaskError> {
    let items = step_items(b, row, step)?;
    let texts: Vec<String> = (0..items.len())
        .map(|j| {
            outputs
                .get(&(j as i32))
                .map_or("", |(_, o)| o.as_str())
                .to_string()
        })
        .collect();
    match &step.join {
        None => Ok(texts.join("\n")),
        Some(join) => {
            let t = prompt::parse(join)?;
            Ok(items
                .iter()
                .zip(&texts)
                .map(|(item, out)| {
                    t.render(|c| match c {
                        "output" => out.clone(),
                        _ => item
                            .get(c)
                            .map_or_else(|| text(&b.table.rows[row], c), value_text),
                    })
                })
                .collect())
        }
    }
}

/// Compute step `k` for the batch's examples that lack it (their earlier steps are in
/// `stored`); returns the new steps to store.
pub fn run_step(b: &Batch, k: usize, stored: &Stored) -> Result<Vec<NewStep>, TaskError> {
    let task = b.task;
    let step = &task.steps[k];
    let template = prompt::parse(&step.template)?;
    let mut todo: Vec<(i64, i32, String)> = Vec::new();
    for &i in b.indices {
        let idx = i as i64;
        let have = stored.get(&idx).and_then(|s| s.get(&(k as i32)));
        let items = step_items(b, i, step)?;
        let mut earlier: BTreeMap<&str, String> = BTreeMap::new();
        for (e, prev) in task.steps[..k].iter().enumerate() {
            let outputs = stored
                .get(&idx)
                .and_then(|s| s.get(&(e as i32)))
                .ok_or_else(|| TaskError::Sample {
                    idx,
                    message: format!(
                        "step `{}` runs before step `{}` is stored",
                        step.name, prev.name
                    ),
                })?;
            earlier.insert(prev.name.as_str(), earlier_text(b, i, prev, outputs)?);
        }
        for (j, item) in items.iter().enumerate() {
            if have.is_some_and(|h| h.contains_key(&(j as i32))) {
                continue;
            }
            let row = &b.table.rows[i];
            let p = template.render(|c| {
                item.get(c)
                    .map(value_text)
                    .or_else(|| earlier.get(c).cloned())
                    .unwrap_or_else(|| text(row, c))
            });
            todo.push((idx, j as i32, p));
        }
    }
    if todo.is_empty() {
        return Ok(vec![]);
    }
    let ids = todo
        .iter()
        .map(|(_, _, p)| b.model.encode(p))
        .collect::<Result<Vec<_>, _>>()?;
    let out = generate_all(b.model, ids, &config(b.opts.decoding.as_ref(), b.opts.seed))?;
    Ok(todo
        .into_iter()
        .zip(out)
        .map(|((idx, item, prompt), g)| NewStep {
            idx,
            step: k as i32,
            item,
            prompt,
            output: g.text,
        })
        .collect())
}

/// The samples of the batch once every step is stored: every step's prompts and outputs in
/// `data.steps`; the last step's output (and, per item, its reference) scored.
pub fn samples(b: &Batch, stored: &Stored) -> Result<Vec<NewSample>, TaskError> {
    let task = b.task;
    let reference = task
        .fields
        .get("reference")
        .map_or("reference", String::as_str);
    let last = task.steps.len() - 1;
    b.indices
        .iter()
        .map(|&i| {
            let idx = i as i64;
            let row = &b.table.rows[i];
            let mut steps_json = Vec::new();
            let mut pairs: Vec<(String, String)> = Vec::new();
            let mut final_prompt = String::new();
            for (k, step) in task.steps.iter().enumerate() {
                let items = step_items(b, i, step)?;
                let stored_step = stored.get(&idx).and_then(|s| s.get(&(k as i32)));
                let mut items_json = Vec::new();
                for (j, item) in items.iter().enumerate() {
                    let (p, o) = stored_step
                        .and_then(|s| s.get(&(j as i32)))
                        .ok_or_else(|| TaskError::Sample {
                            idx,
                            message: format!("step `{}` item {j} is not stored", step.name),
                        })?;
                    items_json.push(json!({ "prompt": p, "output": o }));
                    if k == last {
                        if j == 0 {
                            final_prompt = p.clone();
                        }
                        let r = item
                            .get(reference)
                            .map_or_else(|| text(row, reference), value_text);
                        pairs.push((o.clone(), r));
                    }
                }
                steps_json.push(json!({ "name": step.name, "items": items_json }));
            }
            let output: Vec<&str> = pairs.iter().map(|(o, _)| o.as_str()).collect();
            let refs: Vec<&str> = pairs.iter().map(|(_, r)| r.as_str()).collect();
            Ok(NewSample {
                idx,
                shard: b.shard,
                prompt: final_prompt,
                output: Some(output.join("\n")),
                reference: Some(refs.join("\n")),
                data: json!({ "steps": steps_json, "pairs": pairs }),
            })
        })
        .collect()
}

/// Metrics of the last step: every (output, reference) pair of every sample.
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for s in samples {
        let d: Value = serde_json::from_str(&s.data).map_err(|e| TaskError::Sample {
            idx: s.idx,
            message: e.to_string(),
        })?;
        let p: Vec<(String, String)> =
            serde_json::from_value(d["pairs"].clone()).map_err(|e| TaskError::Sample {
                idx: s.idx,
                message: format!("no scored pairs in the sample: {e}"),
            })?;
        pairs.extend(p);
    }
    let m = text_metrics(
        pairs.iter().map(|(o, r)| (o.as_str(), r.as_str())),
        &task.metrics,
        boot,
    );
    if let Some(e) = &m.missing {
        super::generation::warn_left_out(&e.to_string());
    }
    Ok(m.metrics)
}
