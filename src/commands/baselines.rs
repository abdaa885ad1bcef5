//! `nlebench baselines import FILE.csv` and `nlebench baselines list`.

use std::process::ExitCode;

use anyhow::anyhow;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use store::baselines::parse_csv;

use crate::args::{BaselinesImportArgs, BaselinesListArgs, Global};
use crate::context;

pub async fn import(g: &Global, a: BaselinesImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| anyhow!("cannot read {}: {e}", a.file.display()))?;
    // Parse everything before writing anything: a bad line stores nothing.
    let rows = parse_csv(&text, &a.file.display().to_string())
        .map_err(|e| anyhow!("{e}\n  fix: correct the line and import again"))?;
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let n = store.import_baselines(&rows).await?;
    outln!("{n} baseline(s) imported from {}", a.file.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn list(g: &Global, a: BaselinesListArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let rows = store.baselines().await?;
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|b| {
                serde_json::json!({"task": b.task, "model": b.model, "setting": b.setting,
                    "metric": b.metric, "value": b.value, "source": b.source, "note": b.note})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["task", "model", "setting", "metric", "value", "source"]);
    for b in &rows {
        t.add_row([
            b.task.clone(),
            b.model.clone(),
            b.setting.clone(),
            b.metric.clone(),
            format!("{:.4}", b.value),
            b.source.clone(),
        ]);
    }
    outln!("{t}");
    Ok(ExitCode::SUCCESS)
}
