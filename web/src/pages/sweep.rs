//! `/sweeps/{name}`: the model (× adapter × setting × seed) by task grid of primary metrics
//! with intervals, baseline deltas and status, bar charts per task, and the runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use orchestrator::store::RunStatus;
use orchestrator::store::dashboard::SweepData;
use orchestrator::store::entities::{metric, run};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::chart::{Bar, bars};
use crate::error::PageError;
use crate::format::{baseline_for, delta, num, shade, value_ci};
use crate::list::{ListQuery, Pager, page_of, sort_key, sort_links};
use crate::nav::Nav;

/// A cell of the grid.
pub struct GridCell {
    run_id: i64,
    status: String,
    value: String,
    delta: String,
    style: String,
}

/// A row of the grid.
pub struct GridRow {
    label: String,
    cells: Vec<Option<GridCell>>,
}

/// One run of the runs table.
pub struct RunRow {
    id: i64,
    cell: String,
    status: String,
    samples: i64,
    expected: i64,
    primary: String,
    random_weights: bool,
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sweep.html")]
pub struct SweepPage {
    nav: Nav,
    name: String,
    description: String,
    counts: Vec<(&'static str, usize)>,
    tasks: Vec<String>,
    grid: Vec<GridRow>,
    charts: Vec<String>,
    progress_chart: String,
    runs: Vec<RunRow>,
    pager: Pager,
    sort_links: Vec<(&'static str, String)>,
    active: bool,
}

/// Row label of a run: model, adapter, setting and seed.
pub fn row_label(r: &run::Model) -> String {
    let mut s = r.model_name.clone();
    if let Some(a) = &r.adapter_name {
        s += &format!(" + {a}");
    }
    format!("{s} · {} · seed {}", r.setting_name, r.seed)
}

/// The primary metric name of a run (from its manifest).
pub fn primary_of(r: &run::Model) -> Option<String> {
    r.manifest().ok().map(|m| m.task.primary_metric)
}

pub async fn page(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<SweepPage, PageError> {
    let data = app
        .caches
        .sweep
        .get_or(name.clone(), || app.store.sweep_data(&name))
        .await?;
    let SweepData {
        sweep,
        runs,
        metrics,
        unfinished: counts_of,
        baselines,
    } = &*data;
    let mut by_run: BTreeMap<i64, Vec<&metric::Model>> = BTreeMap::new();
    for m in metrics {
        by_run.entry(m.run_id).or_default().push(m);
    }
    // Each run's primary metric and row label, computed once (manifests are parsed once).
    let primaries: HashMap<i64, &metric::Model> = runs
        .iter()
        .filter_map(|c| {
            let p = primary_of(&c.run)?;
            let m = by_run
                .get(&c.run.id)?
                .iter()
                .copied()
                .find(|m| m.name == p)?;
            Some((c.run.id, m))
        })
        .collect();
    let primary = |r: &run::Model| -> Option<&metric::Model> { primaries.get(&r.id).copied() };
    let label_of: HashMap<i64, String> =
        runs.iter().map(|c| (c.run.id, row_label(&c.run))).collect();
    // The newest run of each (row, task) cell.
    let mut cell_run: HashMap<(&str, &str), &orchestrator::store::dashboard::CellRun> =
        HashMap::new();
    for c in runs {
        cell_run.insert((label_of[&c.run.id].as_str(), c.run.task_name.as_str()), c);
    }
    let tasks: Vec<String> = runs
        .iter()
        .map(|c| c.run.task_name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let labels: BTreeSet<&str> = label_of.values().map(String::as_str).collect();
    // Column scales.
    let mut range: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for c in runs {
        if let Some(m) = primary(&c.run).filter(|m| m.value.is_finite()) {
            let e = range
                .entry(c.run.task_name.as_str())
                .or_insert((m.value, m.value));
            e.0 = e.0.min(m.value);
            e.1 = e.1.max(m.value);
        }
    }
    let grid = labels
        .iter()
        .map(|label| GridRow {
            label: label.to_string(),
            cells: tasks
                .iter()
                .map(|t| {
                    let c = *cell_run.get(&(*label, t.as_str()))?;
                    let m = primary(&c.run);
                    let (lo, hi) = range.get(t.as_str()).copied().unwrap_or((0.0, 1.0));
                    let b = m.and_then(|m| baseline_for(baselines, t, &c.run.model_name, &m.name));
                    Some(GridCell {
                        run_id: c.run.id,
                        status: c.run.status.to_string(),
                        value: m.map(value_ci).unwrap_or_default(),
                        delta: match (m, b) {
                            (Some(m), Some(b)) => {
                                format!(
                                    "{} vs {} ({})",
                                    delta(m.value - b.value),
                                    num(b.value),
                                    b.source
                                )
                            }
                            _ => String::new(),
                        },
                        style: m
                            .map(|m| format!("background: {}", shade(m.value, lo, hi)))
                            .unwrap_or_default(),
                    })
                })
                .collect(),
        })
        .collect();
    let charts = tasks
        .iter()
        .filter_map(|t| {
            let items: Vec<Bar> = runs
                .iter()
                .filter(|c| &c.run.task_name == t)
                .filter_map(|c| {
                    primary(&c.run).map(|m| Bar {
                        label: label_of[&c.run.id].clone(),
                        value: m.value,
                        ci: m.ci_low.zip(m.ci_high),
                    })
                })
                .collect();
            let first = runs.iter().find(|c| &c.run.task_name == t)?;
            let metric_name = primary_of(&first.run)?;
            let base = baseline_for(baselines, t, &first.run.model_name, &metric_name)
                .map(|b| (b.value, b.source.as_str()));
            (!items.is_empty()).then(|| bars(&format!("{t}: {metric_name}"), &items, base))
        })
        .collect();
    let finished: Vec<_> = runs
        .iter()
        .filter(|c| matches!(c.run.status, RunStatus::Done | RunStatus::Failed))
        .filter_map(|c| c.run.finished_at)
        .collect();
    let progress_chart = runs
        .iter()
        .filter_map(|c| c.run.started_at)
        .min()
        .map(|start| crate::chart::progress(start, &finished, runs.len()))
        .unwrap_or_default();
    let counts = RunStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                runs.iter().filter(|c| c.run.status == *s).count(),
            )
        })
        .collect();
    let active = runs.iter().any(|c| c.run.status.is_active());
    let pager = Pager::new(
        &format!("/sweeps/{}", crate::list::encode(&name)),
        &q,
        runs.len() as u64,
    );
    const KEYS: [&str; 3] = ["cell", "run", "status"];
    let key = sort_key(&q, &KEYS, "cell").map_err(PageError::bad_request)?;
    let mut ordered: Vec<&orchestrator::store::dashboard::CellRun> = runs.iter().collect();
    match key {
        "run" => ordered.sort_by_key(|c| c.run.id),
        "status" => ordered.sort_by_key(|c| c.run.status.as_str()),
        _ => {}
    }
    if q.descending(false) {
        ordered.reverse();
    }
    let sort_links = sort_links(
        &format!("/sweeps/{}", crate::list::encode(&name)),
        &q,
        &KEYS,
        false,
    );
    let runs = page_of(ordered, &q)
        .into_iter()
        .map(|c| RunRow {
            id: c.run.id,
            cell: c.cell.clone(),
            status: c.run.status.to_string(),
            samples: if c.run.status == RunStatus::Done {
                c.run.n_expected
            } else {
                counts_of.get(&c.run.id).copied().unwrap_or(0)
            },
            expected: c.run.n_expected,
            primary: primary(&c.run)
                .map(|m| format!("{} = {}", m.name, value_ci(m)))
                .unwrap_or_default(),
            random_weights: c.run.random_weights,
            error: c.run.error.clone().unwrap_or_default(),
        })
        .collect();
    Ok(SweepPage {
        nav: session.nav(),
        name: sweep.name.clone(),
        description: sweep.description.clone().unwrap_or_default(),
        counts,
        tasks,
        grid,
        charts,
        progress_chart,
        runs,
        pager,
        sort_links,
        active,
    })
}
