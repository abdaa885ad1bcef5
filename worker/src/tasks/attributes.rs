//! `attribute-scores`: aggregate the scores an external classifier gave each output, per
//! attribute: the mean, and the share of outputs scored above 0.5 (as pandas computes
//! `df[a].mean()` and `(df[a] > 0.5).mean()`), each with a bootstrap interval.

use orchestrator::spec::TaskSpec;
use orchestrator::store::{MetricValue, entities::sample};

use super::{ScoreOutcome, TaskError};
use crate::data::{Table, text};
use crate::metrics::bootstrap::Bootstrap;

/// Implementation version.
pub const VERSION: i32 = 1;

fn aggregate(task: &TaskSpec, columns: &[Vec<f64>]) -> Vec<MetricValue> {
    let boot = Bootstrap::from_env();
    let mut out = Vec::new();
    for metric in &task.metrics {
        for (attr, values) in task.attributes.iter().zip(columns) {
            let name = format!("{metric}/{attr}");
            match metric.as_str() {
                "attribute_mean" => out.push(boot.mean_metric(&name, values, VERSION)),
                "attribute_share" => {
                    let above: Vec<f64> = values
                        .iter()
                        .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
                        .collect();
                    out.push(boot.mean_metric(&name, &above, VERSION));
                }
                _ => {}
            }
        }
    }
    out
}

/// Metrics of an outputs file with one column per attribute.
pub fn score_table(task: &TaskSpec, table: &Table) -> Result<ScoreOutcome, TaskError> {
    let attrs: Vec<&str> = task.attributes.iter().map(String::as_str).collect();
    table.require(
        &attrs,
        "the file needs a score column for each attribute of the task",
    )?;
    let mut columns = vec![Vec::with_capacity(table.rows.len()); attrs.len()];
    for (i, row) in table.rows.iter().enumerate() {
        for (c, a) in attrs.iter().enumerate() {
            let v = text(row, a);
            columns[c].push(v.trim().parse::<f64>().map_err(|_| TaskError::Sample {
                idx: i as i64,
                message: format!(
                    "row {} of {}: `{a}` is `{v}`, not a number",
                    i + 2,
                    table.path.display()
                ),
            })?);
        }
    }
    Ok(ScoreOutcome {
        metrics: aggregate(task, &columns),
        rows_scored: table.rows.len(),
        rows_skipped: 0,
        notes: vec![],
    })
}

/// Metrics from stored samples whose `data` holds the attribute scores.
pub fn metrics(task: &TaskSpec, samples: &[sample::Model]) -> Result<Vec<MetricValue>, TaskError> {
    let mut columns = vec![Vec::with_capacity(samples.len()); task.attributes.len()];
    for s in samples {
        let d: serde_json::Value =
            serde_json::from_str(&s.data).map_err(|e| TaskError::Sample {
                idx: s.idx,
                message: e.to_string(),
            })?;
        for (c, a) in task.attributes.iter().enumerate() {
            columns[c].push(
                d.get(a)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| TaskError::Sample {
                        idx: s.idx,
                        message: format!("no score `{a}`"),
                    })?,
            );
        }
    }
    Ok(aggregate(task, &columns))
}
