//! `generation`: fill the task's prompt template from each example, generate with the
//! setting's decoding, and score the output against the reference column.

use orchestrator::spec::{Decoding, TaskSpec};
use orchestrator::store::{MetricValue, NewSample, entities::sample};
use serde_json::json;

use super::{Batch, ScoreOutcome, ScoreRequest, TaskError, prompt};
use crate::data::{Table, text};
use engine::LastHiddenState;
use engine::{EngineError, GenerationConfig, generate};
use metrics::bootstrap::Bootstrap;
use metrics::generation::text_metrics;
use metrics::{entailment, mauve};

/// Decoding of a setting as generation parameters (greedy, 20 new tokens by default).
pub fn config(d: Option<&Decoding>, seed: u64) -> GenerationConfig {
    let d = d.cloned().unwrap_or(Decoding {
        do_sample: false,
        temperature: None,
        top_p: None,
        top_k: None,
        num_beams: None,
        max_new_tokens: None,
        min_new_tokens: None,
        max_length: None,
        no_repeat_ngram_size: None,
        repetition_penalty: None,
    });
    GenerationConfig {
        max_new_tokens: d.max_new_tokens.map(|x| x as usize),
        max_length: d.max_length.map(|x| x as usize),
        min_new_tokens: d.min_new_tokens.unwrap_or(0) as usize,
        do_sample: d.do_sample,
        temperature: d.temperature.unwrap_or(1.0),
        top_k: d.top_k.map(|x| x as usize),
        top_p: d.top_p,
        num_beams: d.num_beams.unwrap_or(1) as usize,
        no_repeat_ngram_size: d.no_repeat_ngram_size.unwrap_or(0) as usize,
        repetition_penalty: d.repetition_penalty.unwrap_or(1.0),
        seed,
        ..GenerationConfig::default()
    }
}

/// Generate for the examples `indices`. An example over the task's input limit is not run:
/// its output is empty and its sample says so (`long_input`), as the authors' code did.
pub fn run(b: &Batch) -> Result<Vec<NewSample>, TaskError> {
    let Batch {
        task,
        model,
        table,
        indices,
        shard,
        opts,
    } = *b;
    let reference = task.fields.get("reference").map(String::as_str);
    let prompts = indices
        .iter()
        .map(|&i| prompt::prompt(task, &table.rows[i]))
        .collect::<Result<Vec<_>, _>>()?;
    let long: Vec<Option<usize>> = indices
        .iter()
        .map(|&i| prompt::over_limit(task, &table.rows[i]))
        .collect();
    let run_ids = prompts
        .iter()
        .zip(&long)
        .filter(|(_, l)| l.is_none())
        .map(|(p, _)| model.encode(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut generated =
        generate(model, &run_ids, &config(opts.decoding.as_ref(), opts.seed))?.into_iter();
    let mut out = Vec::with_capacity(indices.len());
    for ((&i, prompt), long) in indices.iter().zip(prompts).zip(long) {
        let reference = reference.map(|r| text(&table.rows[i], r));
        let sample = match long {
            Some(words) => NewSample {
                idx: i as i64,
                shard,
                prompt,
                output: Some(String::new()),
                reference,
                data: json!({ "long_input": true, "input_words": words }),
            },
            None => {
                let g = generated.next().ok_or_else(|| {
                    TaskError::Request("the engine returned fewer outputs than prompts".into())
                })?;
                NewSample {
                    idx: i as i64,
                    shard,
                    prompt,
                    output: Some(g.text.clone()),
                    reference,
                    data: json!({
                        "new_tokens": g.tokens.len(),
                        "stop": g.stop,
                        "prompt_tokens": g.prompt_tokens,
                        "prompt_dropped": g.prompt_dropped,
                    }),
                }
            }
        };
        out.push(sample);
    }
    Ok(out)
}

/// Samples whose input was over the task's limit (their output is empty).
pub fn long_inputs(samples: &[sample::Model]) -> usize {
    samples
        .iter()
        .filter(|s| {
            serde_json::from_str::<serde_json::Value>(&s.data)
                .ok()
                .and_then(|d| d.get("long_input")?.as_bool())
                == Some(true)
        })
        .count()
}

/// Metrics from stored samples (output against reference).
pub fn metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    boot: &Bootstrap,
) -> Result<Vec<MetricValue>, TaskError> {
    let pairs = samples.iter().map(|s| {
        (
            s.output.as_deref().unwrap_or(""),
            s.reference.as_deref().unwrap_or(""),
        )
    });
    let m = text_metrics(pairs, &task.metrics, boot);
    if let Some(e) = &m.missing {
        tracing::warn!("Distinct-n and ENTR left out: {e}");
    }
    let mut out = m.metrics;
    if task.metrics.iter().any(|x| x == "long_inputs") {
        let n = long_inputs(samples);
        if n > 0 {
            tracing::warn!(
                "{n} of {} inputs were over the task's word limit and got the empty output",
                samples.len()
            );
        }
        out.push(MetricValue {
            name: "long_inputs".into(),
            value: n as f64,
            ci_low: None,
            ci_high: None,
            n: samples.len() as i64,
            version: 1,
        });
    }
    let model_metrics: Vec<&str> = task
        .metrics
        .iter()
        .map(String::as_str)
        .filter(|w| *w == "mauve" || entailment::NAMES.contains(w))
        .collect();
    if !model_metrics.is_empty() {
        tracing::warn!(
            "{} left out of stored runs: they need their own model; compute them with `nlebench score --nli-model … --mauve-model …` on the exported outputs",
            model_metrics.join(", ")
        );
    }
    Ok(out)
}

/// Metrics of an outputs file whose hypothesis and reference columns are named by `hyp` and
/// `ref` in the request's column map.
pub fn score_table(
    task: &TaskSpec,
    table: &Table,
    req: &ScoreRequest,
) -> Result<ScoreOutcome, TaskError> {
    let col = |k: &str| {
        req.map.get(k).cloned().ok_or_else(|| TaskError::Request(format!(
            "task `{}` scores a hypothesis against a reference: give `--map hyp=COLUMN,ref=COLUMN` (columns: {})",
            task.name,
            table.columns.join(", ")
        )))
    };
    let (h, r) = (col("hyp")?, col("ref")?);
    table.require(&[h.as_str(), r.as_str()], "name existing columns in --map")?;
    let boot = &req.bootstrap;
    let m = text_metrics(
        table.rows.iter().map(|row| (cell(row, &h), cell(row, &r))),
        &task.metrics,
        boot,
    );
    let mut metrics = m.metrics;
    let mut notes: Vec<String> = m
        .missing
        .map(|e| format!("Distinct-n and ENTR left out: {e}"))
        .into_iter()
        .collect();
    let wants_nli = task
        .metrics
        .iter()
        .any(|w| entailment::NAMES.contains(&w.as_str()));
    match (&req.nli, wants_nli) {
        (Some(clf), true) => {
            let s = req.map.get("source").ok_or_else(|| {
                TaskError::Request(format!(
                    "the entailment ratio classifies the source text against the hypothesis: add `source=COLUMN` to --map (columns: {})",
                    table.columns.join(", ")
                ))
            })?;
            table.require(&[s.as_str()], "name existing columns in --map")?;
            entailment::check_labels(&clf.labels).map_err(|e| {
                TaskError::Engine(EngineError::Config {
                    path: "config.json".into(),
                    message: e.to_string(),
                })
            })?;
            let pairs: Vec<(&str, &str)> = table
                .rows
                .iter()
                .map(|row| (cell(row, s), cell(row, &h)))
                .collect();
            let labels = entailment::labels(clf.as_ref(), &pairs)?;
            metrics.extend(
                entailment::shares(&labels, boot)
                    .into_iter()
                    .filter(|m| task.metrics.contains(&m.name)),
            );
        }
        (None, true) => notes.push(
            "entailment ratios left out: give the NLI classifier with `--nli-model hf:NorGLM/Entailment` (or its local directory) and the article with `--map source=COLUMN`".into(),
        ),
        (_, false) => {}
    }
    if task.metrics.iter().any(|w| w == "mauve") {
        match &req.mauve {
            Some((model, max_tokens)) => {
                // P = the human references, Q = the generations, empty texts left out.
                let side = |c: &str| -> Vec<&str> {
                    table
                        .rows
                        .iter()
                        .map(|row| cell(row, c))
                        .filter(|t| !t.is_empty())
                        .collect()
                };
                let (p, q) = (side(&r), side(&h));
                let features = LastHiddenState {
                    model,
                    max_tokens: *max_tokens,
                };
                let cfg = mauve::MauveConfig::default();
                if let Some(m) = mauve::mauve_of_texts(&features, &p, &q, &cfg)? {
                    metrics.push(MetricValue {
                        name: "mauve".into(),
                        value: m.mauve,
                        ci_low: None,
                        ci_high: None,
                        n: m.q_rows as i64,
                        version: mauve::VERSION,
                    });
                }
            }
            None => notes.push(
                "MAUVE left out: give the feature model with `--mauve-model hf:gpt2-large` (the authors' choice) or a local directory".into(),
            ),
        }
    }
    Ok(ScoreOutcome {
        metrics,
        rows_scored: table.rows.len() - m.skipped,
        rows_skipped: m.skipped,
        notes,
    })
}

fn cell<'a>(row: &'a crate::data::Row, column: &str) -> &'a str {
    row.get(column).and_then(|v| v.as_str()).unwrap_or("")
}
