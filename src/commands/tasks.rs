//! `nlebench tasks list`.

use std::process::ExitCode;

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::args::{Global, TasksListArgs};
use crate::context;

pub fn list(g: &Global, a: TasksListArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    if a.json {
        let v: Vec<_> = tasks.iter().collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // Wrap to the terminal; when piped, to $COLUMNS (else 100 characters).
    if !t.is_tty() {
        let width = crate::environment::columns().unwrap_or(100);
        t.set_width(width);
    }
    t.set_header(["task", "v", "kind", "metrics", "dataset", "description"]);
    for task in tasks.iter() {
        let dataset = match &task.dataset.file {
            Some(f) => format!("{} ({f})", task.dataset.source),
            None => task.dataset.source.to_string(),
        };
        // The primary metric and how many others (all of them in `--json`).
        let metrics = match task.metrics.len() {
            0 | 1 => task.primary_metric.clone(),
            n => format!("{} (+{})", task.primary_metric, n - 1),
        };
        t.add_row([
            task.name.clone(),
            task.version.to_string(),
            task.kind.as_str().to_string(),
            metrics,
            dataset,
            task.description.clone(),
        ]);
    }
    // Names, versions and kinds are never wrapped; metrics, datasets and descriptions are.
    for i in 0..3 {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}
