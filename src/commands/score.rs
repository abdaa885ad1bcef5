//! `nlebench score`: a task's metrics from an outputs file, without a model or the store.

use std::process::ExitCode;
use std::sync::Arc;

use engine::bert::BertClassifier;
use engine::{LoadedModel, ModelCache};
use metrics::bootstrap::Bootstrap;
use spec::DataFormat;
use spec::Dtype;
use worker::tasks::generation::MetricModels;
use worker::tasks::{ScoreRequest, score_table};

use crate::args::{Global, RowFilter, ScoreArgs};
use crate::context::source;
use crate::{context, render};

/// The NLI classifier of the entailment ratios.
fn load_nli(g: &Global, model: &str) -> anyhow::Result<Arc<BertClassifier>> {
    let s = context::settings(g)?;
    let files = engine::locate(&source(model)?, &context::locations(&s), true)?;
    let device = engine::device::select(s.device)?;
    Ok(Arc::new(BertClassifier::load(&files, &device)?))
}

/// The causal LM whose hidden states are MAUVE's features (f32).
fn load_lm(g: &Global, model: &str) -> anyhow::Result<Arc<LoadedModel>> {
    let s = context::settings(g)?;
    Ok(ModelCache::default().get(
        &source(model)?,
        Dtype::F32,
        None,
        &context::locations(&s),
        &engine::device::select(s.device)?,
    )?)
}

pub fn score(g: &Global, a: ScoreArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    let task = context::task(&tasks, &a.task)?;
    let format = DataFormat::from_path(&a.input).unwrap_or(DataFormat::Csv);
    let table = worker::data::read(&a.input, format)?;
    let req = ScoreRequest {
        map: a.map.clone().unwrap_or_default(),
        filter_paper: matches!(a.filter, Some(RowFilter::Paper)),
        models: MetricModels {
            nli: a.nli_model.as_deref().map(|m| load_nli(g, m)).transpose()?,
            mauve: a
                .mauve_model
                .as_deref()
                .map(|m| load_lm(g, m).map(|lm| (lm, a.mauve_max_tokens)))
                .transpose()?,
            missing: vec![],
        },
        bootstrap: Bootstrap::with_iterations(s.bootstrap_iterations),
    };
    let rows_kept = if req.filter_paper {
        worker::tasks::filter_paper(&table).rows.len()
    } else {
        table.rows.len()
    };
    let out = score_table(task, &table, &req)?;
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    if a.json {
        let map: serde_json::Map<String, serde_json::Value> = out
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.into()))
            .collect();
        let n: serde_json::Map<String, serde_json::Value> = out
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.n.into()))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "task": task.name,
                "task_version": task.version,
                "input": a.input.display().to_string(),
                "rows": table.rows.len(),
                "rows_kept": rows_kept,
                "rows_scored": out.rows_scored,
                "rows_skipped": out.rows_skipped,
                "notes": out.notes,
                "metrics": map,
                "n": n,
            }))?
        );
    } else {
        outln!(
            "{} of {} rows of {} scored as task {}{}{}",
            out.rows_scored,
            table.rows.len(),
            a.input.display(),
            task.name,
            if req.filter_paper {
                format!(" ({rows_kept} kept by the paper filter)")
            } else {
                String::new()
            },
            if out.rows_skipped > 0 {
                format!(
                    "; {} skipped because ROUGE cannot score them",
                    out.rows_skipped
                )
            } else {
                String::new()
            }
        );
        outln!("{}", render::metrics_table(&out.metrics));
    }
    Ok(ExitCode::SUCCESS)
}
