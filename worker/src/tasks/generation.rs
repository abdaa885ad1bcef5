//! `generation`: fill the task's prompt template from each example, generate with the
//! setting's decoding, and score the output against the reference column.

use serde_json::json;
use spec::{Decoding, TaskSpec};
use store::{MetricValue, NewSample, entities::sample};

use super::{Batch, ScoreOutcome, ScoreRequest, TaskError, conversation, prompt};
use crate::data::{Table, text};
use engine::LastHiddenState;
use engine::{EngineError, Generation, GenerationConfig, Request, generate, generate_continuous};
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

/// Generate a continuation of each prompt. Without beams, with continuous batching: every
/// prompt is in flight at once and a row stops computing the moment it ends, and each output
/// is the one the prompt gets alone (also when sampling: every row has its own seeded
/// generator), as in the authors' one-prompt-at-a-time loop. Beams run in a static batch.
pub fn generate_all(
    model: &engine::LoadedModel,
    prompts: Vec<Vec<u32>>,
    cfg: &GenerationConfig,
) -> Result<Vec<Generation>, EngineError> {
    if cfg.num_beams > 1 {
        return generate(model, &prompts, cfg);
    }
    let requests: Vec<Request> = prompts
        .into_iter()
        .map(|prompt| Request {
            prompt,
            max_new_tokens: None,
        })
        .collect();
    generate_continuous(model, &requests, cfg, requests.len(), |_, _| Ok(()))
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
    let source = task.fields.get("source").map(String::as_str);
    let (prompts, shown): (Vec<String>, Vec<Option<Vec<usize>>>) = indices
        .iter()
        .map(|&i| {
            let p = prompt::prompt(task, &table.rows[i])?;
            conversation::prompt(opts, task, i, p)
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
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
        generate_all(model, run_ids, &config(opts.decoding.as_ref(), opts.seed))?.into_iter();
    let mut out = Vec::with_capacity(indices.len());
    for (((&i, prompt), long), shown) in indices.iter().zip(prompts).zip(long).zip(shown) {
        let reference = reference.map(|r| text(&table.rows[i], r));
        let sample = match long {
            Some(words) => NewSample {
                idx: i as i64,
                shard,
                prompt,
                output: Some(String::new()),
                reference,
                data: with_source(
                    json!({ "long_input": true, "input_words": words }),
                    source.map(|c| text(&table.rows[i], c)),
                ),
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
                    data: with_source(
                        json!({
                            "new_tokens": g.tokens.len(),
                            "stop": g.stop,
                            "prompt_tokens": g.prompt_tokens,
                            "prompt_dropped": g.prompt_dropped,
                        }),
                        source.map(|c| text(&table.rows[i], c)),
                    ),
                }
            }
        };
        let mut sample = sample;
        if let Some(rows) = shown {
            sample.data["fewshot"] = json!(rows);
        }
        out.push(sample);
    }
    Ok(out)
}

/// The sample data with the source text (what the entailment ratios classify the output
/// against), when the task has one.
fn with_source(mut data: serde_json::Value, source: Option<String>) -> serde_json::Value {
    if let Some(s) = source {
        data["source"] = s.into();
    }
    data
}

/// Samples whose input was over the task's limit (their output is empty).
pub fn long_inputs(samples: &[sample::Model]) -> usize {
    samples
        .iter()
        .filter(|s| s.data_json()["long_input"].as_bool() == Some(true))
        .count()
}

/// Warn that Distinct-n and ENTR were left out, once per process for each reason: every
/// generation run of a sweep would say the same.
pub(super) fn warn_left_out(reason: &str) {
    static SAID: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let first = SAID
        .lock()
        .map(|mut said| said.insert(reason.to_string()))
        .unwrap_or(true);
    if first {
        tracing::warn!("Distinct-n and ENTR left out: {reason}");
    }
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
        warn_left_out(&e.to_string());
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
    Ok(out)
}

/// The models of the model-based metrics, as far as they could be loaded.
#[derive(Debug, Clone, Default)]
pub struct MetricModels {
    /// NLI classifier of the entailment ratios.
    pub nli: Option<std::sync::Arc<engine::bert::BertClassifier>>,
    /// Causal LM whose final hidden states are MAUVE's features, and the tokens it reads.
    pub mauve: Option<(std::sync::Arc<engine::LoadedModel>, usize)>,
    /// Why a model the task names could not be loaded (one line each).
    pub missing: Vec<String>,
}

/// The entailment ratios (source → hypothesis) and MAUVE (references against hypotheses)
/// of `(source, hypothesis, reference)` rows, with the models given; a metric whose model is
/// missing is left out with a note saying why.
pub fn model_metrics(
    task: &TaskSpec,
    rows: &[(Option<&str>, &str, &str)],
    models: &MetricModels,
    boot: &Bootstrap,
) -> Result<(Vec<MetricValue>, Vec<String>), TaskError> {
    let mut metrics = Vec::new();
    let mut notes = models.missing.clone();
    let wants_nli = task
        .metrics
        .iter()
        .any(|w| entailment::NAMES.contains(&w.as_str()));
    let noted = |prefix: &str| models.missing.iter().any(|m| m.starts_with(prefix));
    match (&models.nli, wants_nli) {
        (Some(clf), true) => {
            let pairs: Option<Vec<(&str, &str)>> =
                rows.iter().map(|(s, h, _)| Some(((*s)?, *h))).collect();
            match pairs {
                Some(pairs) => {
                    entailment::check_labels(&clf.labels).map_err(|e| {
                        TaskError::Engine(EngineError::Config {
                            path: "config.json".into(),
                            message: e.to_string(),
                        })
                    })?;
                    let labels = entailment::labels(clf.as_ref(), &pairs)?;
                    metrics.extend(
                        entailment::shares(&labels, boot)
                            .into_iter()
                            .filter(|m| task.metrics.contains(&m.name)),
                    );
                }
                None => notes.push(
                    "entailment ratios left out: they classify the source text against the output; give the source column (`--map source=COLUMN`, or `source` under the task's [fields])".into(),
                ),
            }
        }
        (None, true) if !noted("entailment") => notes.push(
            "entailment ratios left out: give the NLI classifier (`nli_model` in the task file or the sweep's [metric_models], `--nli-model` for `score`), e.g. hf:NorGLM/Entailment".into(),
        ),
        _ => {}
    }
    if task.metrics.iter().any(|w| w == "mauve") {
        match &models.mauve {
            Some((model, max_tokens)) => {
                // P = the human references, Q = the generations, empty texts left out.
                let p: Vec<&str> = rows.iter().map(|r| r.2).filter(|t| !t.is_empty()).collect();
                let q: Vec<&str> = rows.iter().map(|r| r.1).filter(|t| !t.is_empty()).collect();
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
            None if !noted("MAUVE") => notes.push(
                "MAUVE left out: give the feature model (`mauve_model` in the task file or the sweep's [metric_models], `--mauve-model` for `score`), e.g. hf:openai-community/gpt2-large as the authors".into(),
            ),
            None => {}
        }
    }
    Ok((metrics, notes))
}

/// The model-based metrics of stored samples (the source text from the samples' data).
pub fn stored_model_metrics(
    task: &TaskSpec,
    samples: &[sample::Model],
    models: &MetricModels,
    boot: &Bootstrap,
) -> Result<(Vec<MetricValue>, Vec<String>), TaskError> {
    let sources: Vec<Option<String>> = samples.iter().map(|s| s.data_text("source")).collect();
    let rows: Vec<(Option<&str>, &str, &str)> = samples
        .iter()
        .zip(&sources)
        .map(|(s, src)| {
            (
                src.as_deref(),
                s.output.as_deref().unwrap_or(""),
                s.reference.as_deref().unwrap_or(""),
            )
        })
        .collect();
    model_metrics(task, &rows, models, boot)
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
    let source = match req.map.get("source") {
        Some(c) => {
            table.require(&[c.as_str()], "name existing columns in --map")?;
            Some(c.as_str())
        }
        None if req.models.nli.is_some()
            && task
                .metrics
                .iter()
                .any(|w| entailment::NAMES.contains(&w.as_str())) =>
        {
            return Err(TaskError::Request(format!(
                "the entailment ratio classifies the source text against the hypothesis: add `source=COLUMN` to --map (columns: {})",
                table.columns.join(", ")
            )));
        }
        None => None,
    };
    let rows: Vec<(Option<&str>, &str, &str)> = table
        .rows
        .iter()
        .map(|row| (source.map(|c| cell(row, c)), cell(row, &h), cell(row, &r)))
        .collect();
    let (model_values, model_notes) = model_metrics(task, &rows, &req.models, boot)?;
    metrics.extend(model_values);
    notes.extend(model_notes);
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
