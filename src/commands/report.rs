//! `nlebench report SWEEP`: the reproduction report as Markdown, HTML (the dashboard's page),
//! CSV or JSON.

use std::io::Write;
use std::process::ExitCode;

use analysis::reproduction::{self, Report};
use anyhow::Context as _;

use crate::args::{Global, ReportArgs, ReportFormat};
use crate::context;

pub async fn report(g: &Global, a: ReportArgs) -> anyhow::Result<ExitCode> {
    if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
        anyhow::bail!("--tolerance must be a number ≥ 0, e.g. 0.0001");
    }
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let data = store.sweep_data(&a.sweep).await?;
    let report = reproduction::build(&data, a.tolerance);
    let text = match a.format {
        ReportFormat::Md => markdown(&report),
        ReportFormat::Html => web::pages::report::render_html(&report)?,
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &report.rows {
                w.serialize(CsvRow::from(r))?;
            }
            String::from_utf8(w.into_inner()?)?
        }
    };
    match &a.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A row as CSV (the verdict as its word).
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    task: &'a str,
    model: &'a str,
    adapter: &'a str,
    setting: &'a str,
    run_id: Option<i64>,
    metric: &'a str,
    value: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    baseline: f64,
    baseline_setting: &'a str,
    source: &'a str,
    provenance: &'a str,
    delta: Option<f64>,
    verdict: &'static str,
}

impl<'a> From<&'a reproduction::Row> for CsvRow<'a> {
    fn from(r: &'a reproduction::Row) -> Self {
        CsvRow {
            task: &r.task,
            model: &r.model,
            adapter: &r.adapter,
            setting: &r.setting,
            run_id: r.run_id,
            metric: &r.metric,
            value: r.value,
            ci_low: r.ci_low,
            ci_high: r.ci_high,
            baseline: r.baseline,
            baseline_setting: &r.baseline_setting,
            source: &r.source,
            provenance: &r.provenance,
            delta: r.delta,
            verdict: r.verdict.as_str(),
        }
    }
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# Reproduction report of {}\n\nReproduced: the baseline lies inside the value's 95 % interval, or within {} · max(|baseline|, 1) of it. Metrics are matched by name, never flipped. Not measured: the run has no such value.\n\n**{}**\n\n",
        r.sweep,
        r.tolerance,
        r.overall.line()
    );
    for t in &r.per_task {
        s += &format!("- {}\n", t.line());
    }
    s += "\n| task | model | run | metric | value [95 % interval] | baseline | Δ | verdict | provenance |\n|---|---|---|---|---|---|---|---|---|\n";
    for row in &r.rows {
        let num = |v: f64| metrics::format_value(&row.metric, v);
        let model = if row.adapter.is_empty() {
            row.model.clone()
        } else {
            format!("{}+{}", row.model, row.adapter)
        };
        let value = match (row.value, row.ci_low, row.ci_high) {
            (Some(v), Some(lo), Some(hi)) => format!("{} [{}, {}]", num(v), num(lo), num(hi)),
            (Some(v), _, _) => num(v),
            (None, _, _) => "none".into(),
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} · {} |\n",
            row.task,
            model,
            row.run_id.map_or_else(|| "none".into(), |i| i.to_string()),
            row.metric,
            value,
            num(row.baseline),
            row.delta.map_or_else(|| "none".into(), num),
            row.verdict.as_str(),
            row.source,
            row.provenance.replace('|', "/")
        );
    }
    s
}
