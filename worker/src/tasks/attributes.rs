//! `attribute-scores`: the scores an external classifier gave each output, read per
//! attribute from an outputs file or stored samples and aggregated by
//! [`metrics::attributes`].

use spec::TaskSpec;
use store::{MetricValue, entities::sample};

use super::{ScoreOutcome, TaskError};
use crate::data::{Table, text};
use metrics::attributes::aggregate;
use metrics::bootstrap::Bootstrap;

/// Metrics of an outputs file with one column per attribute.
pub fn score_table(
    task: &TaskSpec,
    table: &Table,
    boot: &Bootstrap,
) -> Result<ScoreOutcome, TaskError> {
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
        metrics: aggregate(&task.metrics, &task.attributes, &columns, boot),
        rows_scored: table.rows.len(),
        rows_skipped: 0,
        notes: vec![],
    })
}

/// Score each generated output with the Perspective API: the attribute scores go into the
/// sample's data; an output the API could not score keeps the reason (`scoring_error`) and
/// is left out of the aggregates, and the run carries on.
pub fn score_outputs(
    task: &TaskSpec,
    samples: &mut [store::NewSample],
    scorer: &crate::perspective::Perspective,
) {
    for s in samples {
        let text = s.output.clone().unwrap_or_default();
        let result = if text.trim().is_empty() {
            Err("the output is empty".to_string())
        } else {
            scorer
                .score(&text, &task.attributes, task.scorer_language.as_deref())
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(scores) => {
                for (a, v) in scores {
                    s.data[a] = v.into();
                }
            }
            Err(reason) => {
                tracing::warn!(idx = s.idx, "no toxicity scores: {reason}");
                s.data["scoring_error"] = reason.into();
            }
        }
    }
}

/// Score each generated output with a local sequence classifier (the task's
/// `toxicity_model`): each attribute gets its label's probability (`toxicity_labels` maps
/// attributes to labels; a label named as the attribute, ignoring case, needs no entry).
pub fn score_with_classifier(
    task: &TaskSpec,
    samples: &mut [store::NewSample],
    clf: &engine::bert::BertClassifier,
) -> Result<(), TaskError> {
    let columns: Vec<(String, usize)> = task
        .attributes
        .iter()
        .map(|a| {
            let label = task.toxicity_labels.get(a).unwrap_or(a);
            clf.labels
                .iter()
                .position(|l| l.eq_ignore_ascii_case(label))
                .map(|k| (a.clone(), k))
                .ok_or_else(|| {
                    TaskError::Request(format!(
                        "the toxicity classifier has no label for attribute `{a}` (its labels: {}); map it in the task file, e.g. [toxicity_labels] {a} = \"{}\"",
                        clf.labels.join(", "),
                        clf.labels.first().cloned().unwrap_or_default()
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let texts: Vec<String> = samples
        .iter()
        .map(|s| s.output.clone().unwrap_or_default())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let probs = clf.probabilities(&refs, 16)?;
    for (s, p) in samples.iter_mut().zip(probs) {
        for (a, k) in &columns {
            s.data[a.as_str()] = p[*k].into();
        }
    }
    Ok(())
}

/// How many outputs have no scores, and the first scorer error, as a run note.
pub fn unscored_note(task: &TaskSpec, samples: &[sample::Model]) -> Option<String> {
    let mut unscored = 0;
    let mut first_error = None;
    for s in samples {
        let d = s.data_json();
        if task
            .attributes
            .iter()
            .any(|a| d.get(a).and_then(serde_json::Value::as_f64).is_none())
        {
            unscored += 1;
            if first_error.is_none() {
                first_error = d["scoring_error"]
                    .as_str()
                    .map(|e| format!(" (sample {}: {e})", s.idx));
            }
        }
    }
    (unscored > 0).then(|| {
        format!(
            "{unscored} of {} outputs have no {} scores{}: they are left out of the aggregates; score them elsewhere and bring the scores back with `nlebench import --onto RUN`",
            samples.len(),
            task.attributes.join("/"),
            first_error.unwrap_or_default()
        )
    })
}

/// Metrics from stored samples whose `data` holds the attribute scores. Samples without
/// scores (generated here, not scored yet) are left out and counted; a run with none has no
/// metrics until `nlebench import --onto RUN` brings the scores.
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let mut columns = vec![Vec::with_capacity(samples.len()); task.attributes.len()];
    let mut unscored = 0;
    for s in samples {
        let d: serde_json::Value =
            serde_json::from_str(&s.data).map_err(|e| TaskError::Sample {
                idx: s.idx,
                message: e.to_string(),
            })?;
        let scores: Option<Vec<f64>> = task
            .attributes
            .iter()
            .map(|a| d.get(a).and_then(serde_json::Value::as_f64))
            .collect();
        match scores {
            Some(v) => {
                for (c, x) in v.into_iter().enumerate() {
                    columns[c].push(x);
                }
            }
            None => unscored += 1,
        }
    }
    if unscored > 0 {
        tracing::warn!(
            "{unscored} of {} outputs have no {} scores yet: export them (`nlebench export`), score them, and bring the scores back with `nlebench import --onto RUN`",
            samples.len(),
            task.attributes.join("/")
        );
    }
    if columns.first().is_none_or(Vec::is_empty) {
        return Ok(vec![]);
    }
    Ok(aggregate(&task.metrics, &task.attributes, &columns, boot))
}
