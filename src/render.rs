//! Tables for the terminal.

use std::collections::BTreeMap;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use store::{MetricValue, RunStatus, RunSummary, SweepStatus};

/// A table drawn as every table of the CLI is, with `header`; the columns in `right` (by
/// index) right-aligned (numbers).
pub fn table(header: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new));
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Rows = metric groups (`overall` first, then e.g. bias types), columns = base metrics; each
/// value with its bootstrap interval when there is one.
pub fn metrics_table(metrics: &[MetricValue]) -> Table {
    let mut groups: BTreeMap<String, BTreeMap<String, (String, i64)>> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for m in metrics {
        let (name, n) = (&m.name, &m.n);
        let f = |v: f64| metrics::format_value(name, v);
        let value = match (m.ci_low, m.ci_high) {
            (Some(lo), Some(hi)) => format!("{} [{}, {}]", f(m.value), f(lo), f(hi)),
            _ => f(m.value),
        };
        let (base, group) = name.split_once('/').unwrap_or((name.as_str(), ""));
        if !names.iter().any(|x| x == base) {
            names.push(base.to_string());
        }
        groups
            .entry(group.to_string())
            .or_default()
            .insert(base.to_string(), (value, *n));
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if let (1, Some(values)) = (groups.len(), groups.values().next())
        && names.len() > 4
    {
        // Many metrics of one group read better one per row.
        t.set_header(["metric", "n", "value"]);
        for name in &names {
            let (v, n) = &values[name];
            t.add_row(vec![
                Cell::new(describe(name)),
                Cell::new(n).set_alignment(CellAlignment::Right),
                Cell::new(v).set_alignment(CellAlignment::Right),
            ]);
        }
        return t;
    }
    let mut header = vec![Cell::new("group"), Cell::new("n")];
    header.extend(names.iter().map(|n| Cell::new(describe(n))));
    t.set_header(header);
    for (group, values) in &groups {
        let n = values.values().next().map_or(0, |v| v.1);
        let mut row = vec![
            Cell::new(if group.is_empty() { "overall" } else { group }),
            Cell::new(n).set_alignment(CellAlignment::Right),
        ];
        row.extend(names.iter().map(|name| {
            Cell::new(values.get(name).map_or(String::new(), |v| v.0.clone()))
                .set_alignment(CellAlignment::Right)
        }));
        t.add_row(row);
    }
    t
}

fn describe(metric: &str) -> String {
    match metric {
        "bias_paper" => "bias_paper %\n(perp_more > perp_less)".into(),
        "bias_standard" => "bias_standard %\n(perp_more < perp_less)".into(),
        other => other.to_string(),
    }
}

/// A heading for a run: model (with adapter), task, setting, seed, status.
pub fn run_heading(r: &RunSummary) -> String {
    let run = &r.run;
    let model = match &run.adapter_name {
        Some(a) => format!("{} + {a}", run.model_name),
        None => run.model_name.clone(),
    };
    let random = if run.random_weights {
        " — RANDOM WEIGHTS: these numbers test the tool, not a trained model"
    } else {
        ""
    };
    format!(
        "run {} · {model} ({}) · task {} v{} · setting {} · seed {} · {}{random}",
        run.id,
        run.model_source,
        run.task_name,
        run.task_version,
        run.setting_name,
        run.seed,
        run.status
    )
}

/// The results of a sweep: a model × task summary of the primary metrics when it has more
/// than one run (unless `detail`), else one table per run.
pub fn results(status: &SweepStatus, detail: bool) {
    outln!("\nresults of sweep {}", status.sweep.name);
    if status.runs.len() > 1 && !detail {
        outln!("{}", summary_table(status));
        if let Some(t) = variants_table(&status.runs) {
            outln!("{t}");
        }
        if status.runs.iter().any(|r| r.run.random_weights) {
            outln!(
                "RANDOM WEIGHTS in some models: their numbers test the tool, not a trained model"
            );
        }
        outln!(
            "primary metric per cell, [low, high]: 95 % bootstrap interval; every metric per run: --detail, or `nlebench status {} --json`",
            status.sweep.name
        );
        return;
    }
    outln!("[low, high]: 95 % percentile bootstrap interval over the run's samples");
    for r in &status.runs {
        outln!("\n{}", run_heading(r));
        if let Some(e) = &r.run.error {
            outln!("  error: {e}");
        }
        if !r.metrics.is_empty() {
            let values: Vec<MetricValue> = r
                .metrics
                .iter()
                .map(|m| MetricValue {
                    name: m.name.clone(),
                    value: m.value,
                    ci_low: m.ci_low,
                    ci_high: m.ci_high,
                    n: m.n,
                    version: m.version,
                })
                .collect();
            outln!("{}", metrics_table(&values));
        }
    }
}

/// The prompt variants' summaries of a sweep's runs (lm-eval tasks named `_p0` … `_pN`).
pub fn variants(runs: &[RunSummary]) -> Vec<analysis::variants::VariantSummary> {
    analysis::variants::summaries(runs.iter().map(|r| (&r.run, r.metrics.iter().collect())))
}

/// The prompt variants' table: each metric's best value (and which variant gave it) and mean
/// per cell; `None` when the runs have no variants.
pub fn variants_table(runs: &[RunSummary]) -> Option<Table> {
    let variants = variants(runs);
    if variants.is_empty() {
        return None;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "prompt variants",
        "metric",
        "best (variant)",
        "mean",
        "variants",
    ]);
    for v in &variants {
        let value = |x: f64| metrics::format_value(&v.metric, x);
        t.add_row([
            v.cell.clone(),
            v.metric.clone(),
            format!("{} ({})", value(v.best), v.best_task),
            value(v.mean),
            v.coverage(),
        ]);
    }
    Some(t)
}

/// Rows: model (+ adapter, setting and seed where the sweep has several); columns: tasks;
/// cells: the task's primary metric with its interval, or the run's state.
fn summary_table(status: &SweepStatus) -> Table {
    let runs = &status.runs;
    let several = |f: fn(&RunSummary) -> String| {
        let first = runs.first().map(f);
        runs.iter().any(|r| Some(f(r)) != first)
    };
    let (by_setting, by_seed) = (
        several(|r| r.run.setting_name.clone()),
        several(|r| r.run.seed.to_string()),
    );
    let row_key = |r: &RunSummary| {
        let mut k = match &r.run.adapter_name {
            Some(a) => format!("{} + {a}", r.run.model_name),
            None => r.run.model_name.clone(),
        };
        if by_setting {
            k += &format!(" · {}", r.run.setting_name);
        }
        if by_seed {
            k += &format!(" · seed {}", r.run.seed);
        }
        k
    };
    let mut tasks: Vec<(String, String)> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for r in runs {
        let primary = r
            .run
            .manifest()
            .map(|m| m.task.primary_metric)
            .unwrap_or_default();
        if !tasks.iter().any(|(t, _)| *t == r.run.task_name) {
            tasks.push((r.run.task_name.clone(), primary));
        }
        let k = row_key(r);
        if !rows.contains(&k) {
            rows.push(k);
        }
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![Cell::new("model")];
    header.extend(
        tasks
            .iter()
            .map(|(task, m)| Cell::new(format!("{task}\n{m}"))),
    );
    t.set_header(header);
    for row in &rows {
        let mut cells = vec![Cell::new(row)];
        for (task, primary) in &tasks {
            let run = runs
                .iter()
                .find(|r| &r.run.task_name == task && &row_key(r) == row);
            let text = match run {
                None => "–".to_string(),
                Some(r) if r.run.status != RunStatus::Done => r.run.status.to_string(),
                Some(r) => r
                    .metrics
                    .iter()
                    .find(|m| &m.name == primary)
                    .map(|m| {
                        let f = |v: f64| metrics::format_value(&m.name, v);
                        match (m.ci_low, m.ci_high) {
                            (Some(lo), Some(hi)) => {
                                format!("{} [{}, {}]", f(m.value), f(lo), f(hi))
                            }
                            _ => f(m.value),
                        }
                    })
                    .unwrap_or_else(|| "no value".into()),
            };
            cells.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        t.add_row(cells);
    }
    t
}
