//! `nlebench score`: a task's metrics from an outputs file, without a model or the store.

use std::process::ExitCode;

use anyhow::anyhow;
use orchestrator::spec::DataFormat;

use crate::args::{Global, ScoreArgs};
use crate::{context, render};

pub fn score(g: &Global, a: ScoreArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    let task = tasks.get(&a.task).ok_or_else(|| {
        anyhow!(
            "unknown task `{}`; known tasks: {}\n  fix: see `nlebench tasks list`",
            a.task,
            tasks.names().join(", ")
        )
    })?;
    let format = DataFormat::from_path(&a.input).unwrap_or(DataFormat::Csv);
    let table = worker::data::read(&a.input, format)?;
    let metrics = worker::tasks::score_table(task, &table)?;
    if a.json {
        let map: serde_json::Map<String, serde_json::Value> = metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.into()))
            .collect();
        let n: serde_json::Map<String, serde_json::Value> = metrics
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
                "metrics": map,
                "n": n,
            }))?
        );
    } else {
        outln!(
            "{} rows of {} scored as task {}",
            table.rows.len(),
            a.input.display(),
            task.name
        );
        let rows: Vec<_> = metrics
            .iter()
            .map(|m| (m.name.clone(), m.value, m.n))
            .collect();
        outln!("{}", render::metrics_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
