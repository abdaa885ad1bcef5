//! `classification`: the paper's NLU tasks (NO-BoolQ, NO-QNLI, NO-MRPC). Each example's
//! text (the template, e.g. `{passage} [SEP] {question}`) goes through the model's
//! sequence-classification head; the argmax is the prediction. Samples store the predicted
//! and the gold class index; the metrics are accuracy (with a bootstrap interval), binary F1,
//! macro F1 and MCC as scikit-learn computes them.

use serde_json::json;
use spec::TaskSpec;
use store::{MetricValue, NewSample, entities::sample};

use super::prompt::fill;
use super::{Batch, ScoreOutcome, ScoreRequest, TaskError};
use crate::data::{Table, text};
use engine::{BatchSize, Scoring, classify, perplexities_of_ids};
use metrics::bootstrap::Bootstrap;
use metrics::classification::{self, correct, f1_binary, f1_macro, mcc};

/// Class index of a label cell: one of the task's label values (case-insensitively, so
/// JSON `true` matches `True`), an index below their number, or one of its label words (as
/// an lm-eval `multiple_choice` file gives its choices).
pub fn class_of(task: &TaskSpec, value: &str) -> Option<usize> {
    let v = value.trim();
    task.labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case(v))
        .or_else(|| v.parse::<usize>().ok().filter(|&i| i < task.labels.len()))
        .or_else(|| {
            task.label_words
                .iter()
                .position(|w| w.eq_ignore_ascii_case(v))
        })
}

fn label_error(task: &TaskSpec, idx: i64, where_: String, value: &str) -> TaskError {
    TaskError::Sample {
        idx,
        message: format!(
            "{where_}: `{value}` is not a label of task `{}` (labels: {}, or their indices 0..{})",
            task.name,
            task.labels.join(", "),
            task.labels.len()
        ),
    }
}

/// Classify the examples `indices`: with the model's classification head (a SEQ_CLS
/// adapter) when it has one, else zero-shot by the task's label words.
pub fn run(b: &Batch) -> Result<Vec<NewSample>, TaskError> {
    let Batch {
        task,
        model,
        table,
        indices,
        shard,
        opts,
    } = *b;
    let label = task.fields.get("label").map_or("label", String::as_str);
    let (texts, scores, zero_shot, shown) = if model.classifier.is_some() {
        if opts.shots.is_some() {
            return Err(TaskError::Request(format!(
                "few-shot prompts need a model without a classification head; this cell of task `{}` has one (an NLU adapter): leave num_fewshot out for it",
                task.name
            )));
        }
        let template = task.template.as_deref().ok_or_else(|| {
            TaskError::Request(format!("task `{}` has no input template", task.name))
        })?;
        let texts = indices
            .iter()
            .map(|&i| fill(template, &table.rows[i]))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let logits = classify(model, &refs, opts.batch_size.unwrap_or(8))?;
        (texts, logits, false, vec![None; indices.len()])
    } else {
        let (texts, nll, shown) = zero_shot(b)?;
        // Higher is better, like logits: the negative log-likelihood of each label word.
        let scores = nll
            .into_iter()
            .map(|row| row.into_iter().map(|x| -x as f32).collect())
            .collect();
        (texts, scores, true, shown)
    };
    indices
        .iter()
        .zip(texts)
        .zip(scores)
        .zip(shown)
        .map(|(((&i, prompt), l), shown)| {
            let raw = text(&table.rows[i], label);
            let gold = class_of(task, &raw).ok_or_else(|| {
                label_error(task, i as i64, format!("example {i}, `{label}`"), &raw)
            })?;
            let pred = l
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (k, &v)| if v > b.1 { (k, v) } else { b },
                )
                .0;
            let data = if zero_shot {
                let mut d = json!({ "label_loglik": l, "label": raw, "zero_shot": true });
                if let Some(rows) = shown {
                    d["fewshot"] = json!(rows);
                }
                d
            } else {
                json!({ "logits": l, "label": raw })
            };
            Ok(NewSample {
                idx: i as i64,
                shard,
                prompt,
                output: Some(pred.to_string()),
                reference: Some(gold.to_string()),
                data,
            })
        })
        .collect()
}

/// Prompts, each label's NLL sum per example, and the few-shot pool rows each prompt shows.
type ZeroShot = (Vec<String>, Vec<Vec<f64>>, Vec<Option<Vec<usize>>>);

/// Zero-shot classification as lm-evaluation-harness does multiple choice: each label word,
/// after a space, is scored as the continuation of the prompt; the prompt's tokens are the
/// same for every label, so comparing the whole sequences' NLL sums compares the label
/// words' log-likelihoods. Few-shot examples, when the setting asks for them, come before the
/// prompt. Returns the prompts, per example each label's NLL sum, and the pool rows shown.
fn zero_shot(b: &Batch) -> Result<ZeroShot, TaskError> {
    let Batch {
        task,
        model,
        table,
        indices,
        opts,
        ..
    } = *b;
    let template = task.zero_shot_template.as_deref().ok_or_else(|| {
        TaskError::Request(format!(
            "the model has no classification head and task `{}` has no `label_words` / `zero_shot_template` for zero-shot classification; give the cell an NLU adapter or add them to the task file",
            task.name
        ))
    })?;
    let words = task
        .label_words
        .iter()
        .map(|w| model.encode(&format!(" {w}")))
        .collect::<Result<Vec<_>, _>>()?;
    let (texts, shown): (Vec<String>, Vec<Option<Vec<usize>>>) = indices
        .iter()
        .map(|&i| {
            let p = fill(template, &table.rows[i])?;
            super::conversation::prompt(opts, task, i, p)
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    // Over the context limit, the prompt loses its first tokens (never the label words), the
    // same for every label.
    let limit = opts
        .max_tokens
        .unwrap_or(model.max_positions)
        .min(model.max_positions)
        .saturating_sub(1);
    let longest_word = words.iter().map(Vec::len).max().unwrap_or(0);
    let mut seqs = Vec::with_capacity(texts.len() * words.len());
    for t in &texts {
        let mut ctx = model.encode(t)?;
        let room = limit.saturating_sub(longest_word);
        if ctx.len() > room {
            ctx.drain(..ctx.len() - room);
        }
        for w in &words {
            let mut ids = ctx.clone();
            ids.extend_from_slice(w);
            seqs.push(ids);
        }
    }
    let batch = BatchSize::of_setting(opts.batch_size, opts.memory_budget_mb);
    let scoring = Scoring {
        batch,
        max_tokens: opts.max_tokens,
        ..Scoring::default()
    };
    let scores = perplexities_of_ids(model, seqs, &scoring)?;
    let nll = scores
        .chunks(words.len())
        .map(|c| c.iter().map(|s| s.nll_sum).collect())
        .collect();
    Ok((texts, nll, shown))
}

/// Metrics of predicted and gold class indices.
pub fn of_classes(
    task: &TaskSpec,
    pred: &[usize],
    gold: &[usize],
    boot: &Bootstrap,
) -> Vec<MetricValue> {
    let plain = |name: &str, value: f64| MetricValue {
        name: name.into(),
        value,
        ci_low: None,
        ci_high: None,
        n: pred.len() as i64,
        version: classification::VERSION,
    };
    task.metrics
        .iter()
        .filter_map(|m| {
            Some(match m.as_str() {
                "accuracy" => boot.mean_metric(m, &correct(pred, gold), classification::VERSION),
                "f1" => plain(m, f1_binary(pred, gold)),
                "f1_macro" => plain(m, f1_macro(pred, gold)),
                "mcc" => plain(m, mcc(pred, gold)),
                _ => return None,
            })
        })
        .collect()
}

/// Metrics from stored samples (predicted and gold class indices).
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let class = |s: &sample::Model, v: &Option<String>, what: &str| {
        v.as_deref()
            .and_then(|x| class_of(task, x))
            .ok_or_else(|| TaskError::Sample {
                idx: s.idx,
                message: format!(
                    "stored {what} `{}` is not a class",
                    v.as_deref().unwrap_or("")
                ),
            })
    };
    let mut pred = Vec::with_capacity(samples.len());
    let mut gold = Vec::with_capacity(samples.len());
    for s in samples {
        pred.push(class(s, &s.output, "prediction")?);
        gold.push(class(s, &s.reference, "label")?);
    }
    Ok(of_classes(task, &pred, &gold, boot))
}

/// Predicted and gold classes of an outputs file (`--map pred=COLUMN,label=COLUMN`).
pub fn classes_of_table(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<(Vec<usize>, Vec<usize>), TaskError> {
    let col = |k: &str| {
        req.map.get(k).cloned().ok_or_else(|| {
            TaskError::Request(format!(
                "task `{}` compares predictions with labels: give `--map pred=COLUMN,label=COLUMN` (columns: {})",
                task.name,
                table.columns.join(", ")
            ))
        })
    };
    let (p, l) = (col("pred")?, col("label")?);
    table.require(&[p.as_str(), l.as_str()], "name existing columns in --map")?;
    let mut pred = Vec::with_capacity(table.rows.len());
    let mut gold = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        for (c, out) in [(&p, &mut pred), (&l, &mut gold)] {
            let v = text(row, c);
            let where_ = format!("row {} of {}, column `{c}`", i + 2, table.path.display());
            out.push(class_of(task, &v).ok_or_else(|| label_error(task, i as i64, where_, &v))?);
        }
    }
    Ok((pred, gold))
}

/// Metrics of an outputs file.
pub fn score_table(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<ScoreOutcome, TaskError> {
    let (pred, gold) = classes_of_table(task, table, req)?;
    Ok(ScoreOutcome {
        metrics: of_classes(task, &pred, &gold, &req.bootstrap),
        rows_scored: pred.len(),
        rows_skipped: 0,
        notes: vec![],
    })
}

/// Samples of an outputs file for `nlebench import`.
pub fn import_samples(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<Vec<NewSample>, TaskError> {
    let (pred, gold) = classes_of_table(task, table, req)?;
    let source = req.map.get("prompt").or(req.map.get("source"));
    Ok(pred
        .into_iter()
        .zip(gold)
        .enumerate()
        .map(|(i, (p, g))| NewSample {
            idx: i as i64,
            shard: 0,
            prompt: source.map(|c| text(&table.rows[i], c)).unwrap_or_default(),
            output: Some(p.to_string()),
            reference: Some(g.to_string()),
            data: json!({}),
        })
        .collect())
}
