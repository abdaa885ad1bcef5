//! `nlebench tasks list`.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::args::{Global, JsonFlag};
use crate::context;

pub fn list(g: &Global, a: JsonFlag) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let tasks = context::tasks(&s, None)?;
    if a.json {
        let v: Vec<_> = tasks.iter().collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "task",
        "version",
        "kind",
        "dataset",
        "metrics",
        "description",
    ]);
    for task in tasks.iter() {
        let dataset = match &task.dataset.file {
            Some(f) => format!("{} ({f})", task.dataset.source),
            None => task.dataset.source.to_string(),
        };
        t.add_row([
            task.name.clone(),
            task.version.to_string(),
            task.kind.as_str().to_string(),
            dataset,
            task.metrics.join(", "),
            task.description.clone(),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}
