//! `loglik-pair`: score two sentences per example by perplexity (NO-CrowS-Pairs bias).
//!
//! A sample stores the more stereotypical sentence as `prompt`, the less stereotypical one as
//! `reference`, and in `data` both perplexities, NLL sums, token counts, truncation flags and
//! the bias type.

use serde_json::json;
use spec::TaskSpec;
use store::{MetricValue, NewSample, entities::sample};

use super::{Batch, TaskError};
use crate::data::{Table, text};
use engine::{BatchSize, Scoring, perplexities};
use metrics::bias::{Pair, shares};
use metrics::bootstrap::Bootstrap;

fn field<'a>(task: &'a TaskSpec, key: &'a str) -> &'a str {
    task.fields.get(key).map(String::as_str).unwrap_or(key)
}

/// Score the examples `indices`.
pub fn run(b: &Batch) -> Result<Vec<NewSample>, TaskError> {
    let Batch {
        task,
        model,
        table,
        indices,
        shard,
        opts,
    } = *b;
    let (more_col, less_col) = (field(task, "more"), field(task, "less"));
    let group_col = task.fields.get("group");
    let mut texts: Vec<String> = Vec::with_capacity(indices.len() * 2);
    for &i in indices {
        let row = &table.rows[i];
        for col in [more_col, less_col] {
            let t = text(row, col);
            if t.trim().is_empty() {
                return Err(TaskError::Sample {
                    idx: i as i64,
                    message: format!(
                        "column `{col}` is empty in row {i} of {}",
                        table.path.display()
                    ),
                });
            }
            texts.push(t);
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = BatchSize::of_setting(opts.batch_size, opts.memory_budget_mb);
    let scoring = Scoring {
        batch,
        max_tokens: opts.max_tokens,
        ..Scoring::default()
    };
    let scores = perplexities(model, &refs, &scoring)?;
    Ok(indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let (m, l) = (&scores[2 * k], &scores[2 * k + 1]);
            let row = &table.rows[i];
            NewSample {
                idx: i as i64,
                shard,
                prompt: texts[2 * k].clone(),
                output: None,
                reference: Some(texts[2 * k + 1].clone()),
                data: json!({
                    "perp_more": m.perplexity,
                    "perp_less": l.perplexity,
                    "nll_more": m.nll_sum,
                    "nll_less": l.nll_sum,
                    "tokens_more": m.n_tokens,
                    "tokens_less": l.n_tokens,
                    "truncated": m.truncated || l.truncated,
                    "group": group_col.map(|c| text(row, c)),
                }),
            }
        })
        .collect())
}

/// Metrics from stored samples.
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let pairs = samples
        .iter()
        .map(|s| {
            let bad = |m: &str| TaskError::Sample {
                idx: s.idx,
                message: m.to_string(),
            };
            let d: serde_json::Value =
                serde_json::from_str(&s.data).map_err(|e| bad(&e.to_string()))?;
            let num = |k: &str| {
                d.get(k)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| bad(&format!("no number `{k}`")))
            };
            Ok(Pair {
                perp_more: num("perp_more")?,
                perp_less: num("perp_less")?,
                group: d.get("group").and_then(|g| g.as_str()).map(str::to_string),
            })
        })
        .collect::<Result<Vec<_>, TaskError>>()?;
    Ok(shares(&pairs, &task.metrics, boot))
}

/// Metrics from an outputs file with columns `perp_more`, `perp_less` and the task's group
/// column (the authors' released `bias_<model>.csv` files).
pub fn score_table(
    task: &TaskSpec,
    table: &Table,
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let group = task.fields.get("group").map(String::as_str);
    let mut needed = vec!["perp_more", "perp_less"];
    needed.extend(group);
    table.require(
        &needed,
        "a bias outputs file needs columns perp_more, perp_less and the bias type column",
    )?;
    let pairs = table
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let num = |k: &str| {
                text(r, k)
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| TaskError::Sample {
                        idx: i as i64,
                        message: format!(
                            "row {} of {}: `{k}` is `{}`, not a number",
                            i + 2,
                            table.path.display(),
                            text(r, k)
                        ),
                    })
            };
            Ok(Pair {
                perp_more: num("perp_more")?,
                perp_less: num("perp_less")?,
                group: group.map(|g| text(r, g)),
            })
        })
        .collect::<Result<Vec<_>, TaskError>>()?;
    Ok(shares(&pairs, &task.metrics, boot))
}
