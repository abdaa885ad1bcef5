//! `nlebench report SWEEP`: the reproduction report as Markdown, HTML (the dashboard's page),
//! CSV or JSON.

use std::io::Write;
use std::process::ExitCode;

use analysis::reproduction::{self, Report, Rules};
use anyhow::Context as _;

use crate::args::{Global, ReportArgs, ReportFormat};
use crate::context;

pub async fn report(g: &Global, a: ReportArgs) -> anyhow::Result<ExitCode> {
    if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
        anyhow::bail!("--tolerance must be a number ≥ 0, e.g. 0.0001");
    }
    if a.margin.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
        anyhow::bail!(
            "--margin must be a number > 0 in the metrics' units, e.g. 2 for bias shares"
        );
    }
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let data = store.sweep_data(&a.sweep).await?;
    let rules = Rules {
        tolerance: a.tolerance,
        margin: a.margin,
    };
    let report = reproduction::build(&data, rules);
    if report.rows.is_empty() && matches!(a.format, ReportFormat::Md) {
        eprintln!(
            "note: no value of sweep {} has a baseline (same task, model and metric); import some with `nlebench baselines import FILE.csv`, e.g. experiments/baselines/norglm-released.csv, and see them with `nlebench baselines list`",
            a.sweep
        );
    }
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
    reason: &'a str,
    n: Option<i64>,
    baseline_n: Option<i64>,
    examples: Option<&'a str>,
    baseline_examples: Option<&'a str>,
    random_weights: bool,
    margin: Option<f64>,
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
            n: r.n,
            examples: r.examples.as_deref(),
            random_weights: r.random_weights,
            baseline: r.baseline,
            baseline_n: r.baseline_n,
            baseline_examples: r.baseline_examples.as_deref(),
            baseline_setting: &r.baseline_setting,
            source: &r.source,
            provenance: &r.provenance,
            margin: r.margin,
            delta: r.delta,
            verdict: r.verdict.as_str(),
            reason: &r.reason,
        }
    }
}

fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# Reproduction report of {}\n\n{}\n\n**{}**\n\n",
        r.sweep,
        reproduction::RULE,
        r.overall.line()
    );
    for t in &r.per_task {
        s += &format!("- {}\n", t.line());
    }
    s += "\n| task | model | run | metric | value [95 % interval] | n / baseline n | baseline | Δ | verdict | why | provenance |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
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
        let n = |n: Option<i64>| n.map_or_else(|| "?".into(), |n| n.to_string());
        s += &format!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} · {} |\n",
            row.task,
            model,
            row.run_id.map_or_else(|| "none".into(), |i| i.to_string()),
            row.metric,
            value,
            n(row.n),
            n(row.baseline_n),
            num(row.baseline),
            row.delta.map_or_else(|| "none".into(), num),
            row.verdict.as_str(),
            row.reason.replace('|', "/"),
            row.source,
            row.provenance.replace('|', "/")
        );
    }
    if !r.variants.is_empty() {
        s += "\n## Prompt variants\n\nEach metric's best value over a cell's lm-eval prompt variants (`_p0` … `_pN`; the maximum where higher is better, as NorEval reports it) and their mean; shown, not judged.\n\n| cell | metric | best | best by | mean | variants |\n|---|---|---|---|---|---|\n";
        for v in &r.variants {
            let num = |x: f64| metrics::format_value(&v.metric, x);
            s += &format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                v.cell,
                v.metric,
                num(v.best),
                v.best_task,
                num(v.mean),
                v.coverage()
            );
        }
    }
    s
}
