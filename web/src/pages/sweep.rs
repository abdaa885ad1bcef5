//! `/sweeps/{name}`: the model (× adapter × setting × seed) by task grid of primary metrics
//! with intervals, baseline deltas and status, bar charts per task, and the runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use store::RunStatus;
use store::dashboard::{CellRun, SweepData};
use store::entities::{metric, run};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::chart::{Bar, bars};
use crate::error::PageError;
use crate::format::{baseline_for, metric_delta, value_ci};
use crate::list::{ListQuery, Pager, page_of, sort_key, sort_links};
use crate::nav::Nav;
use crate::pages::said::Said;
use store::annotations::Target;

/// A cell of the grid.
pub struct GridCell {
    run_id: i64,
    status: String,
    value: String,
    delta: String,
    /// `shade-best`, `shade-worse` or empty, by the metric's direction within its task.
    tone: &'static str,
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
    /// The error's first line, and all of it when it has more.
    error_head: String,
    error: String,
}

/// A metric over the prompt variants of one cell (lm-eval tasks named as NorEval names them).
pub struct VariantRow {
    pub(crate) cell: String,
    pub(crate) metric: String,
    pub(crate) best: String,
    pub(crate) best_task: String,
    pub(crate) mean: String,
    pub(crate) variants: String,
}

impl VariantRow {
    /// The row of a summary, its values formatted as the metric's.
    pub fn of(v: &analysis::variants::VariantSummary) -> VariantRow {
        VariantRow {
            best: metrics::format_value(&v.metric, v.best),
            mean: metrics::format_value(&v.metric, v.mean),
            variants: v.coverage(),
            best_task: v.best_task.clone(),
            metric: v.metric.clone(),
            cell: v.cell.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "sweep.html")]
pub struct SweepPage {
    nav: Nav,
    name: String,
    description: String,
    counts: Vec<(&'static str, usize)>,
    /// (task, the primary metric its grid column shows).
    task_heads: Vec<(String, String)>,
    grid: Vec<GridRow>,
    variants: Vec<VariantRow>,
    charts: Vec<String>,
    progress_chart: String,
    runs: Vec<RunRow>,
    pager: Pager,
    sort_links: Vec<(&'static str, String)>,
    active: bool,
    archived: bool,
    said: Said,
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
    let view = Indexed::new(&data);
    let runs = &data.runs;
    let counts = RunStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                runs.iter().filter(|c| c.run.status == *s).count(),
            )
        })
        .collect();
    let base = format!("/sweeps/{}", crate::list::encode(&name));
    let said = Said::new(
        app.store
            .annotations(&Target::Sweep(data.sweep.name.clone()))
            .await?,
        base.clone(),
    );
    const KEYS: [&str; 3] = ["cell", "run", "status"];
    let key = sort_key(&q, &KEYS, "cell").map_err(PageError::bad_request)?;
    Ok(SweepPage {
        nav: session.nav(),
        name: data.sweep.name.clone(),
        description: data.sweep.description.clone().unwrap_or_default(),
        counts,
        grid: view.grid(),
        variants: view.variants(),
        charts: view.charts(),
        progress_chart: view.progress_chart(),
        runs: view.runs_table(key, &q),
        task_heads: view.task_heads(),
        pager: Pager::new(&base, &q, runs.len() as u64),
        sort_links: sort_links(&base, &q, &KEYS, false),
        active: runs.iter().any(|c| c.run.status.is_active()),
        archived: data.sweep.archived_at.is_some(),
        said,
    })
}

/// A sweep's runs indexed for its page: each run's primary metric (manifests parsed once), its
/// row label, the newest run of each (row, task) cell and the tasks, in order.
struct Indexed<'a> {
    data: &'a SweepData,
    primaries: HashMap<i64, &'a metric::Model>,
    labels: HashMap<i64, String>,
    cells: HashMap<(String, String), &'a CellRun>,
    tasks: Vec<String>,
}

impl<'a> Indexed<'a> {
    fn new(data: &'a SweepData) -> Indexed<'a> {
        let mut by_run: BTreeMap<i64, Vec<&metric::Model>> = BTreeMap::new();
        for m in &data.metrics {
            by_run.entry(m.run_id).or_default().push(m);
        }
        let primaries = data
            .runs
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
        let labels: HashMap<i64, String> = data
            .runs
            .iter()
            .map(|c| (c.run.id, row_label(&c.run)))
            .collect();
        let cells = data
            .runs
            .iter()
            .map(|c| ((labels[&c.run.id].clone(), c.run.task_name.clone()), c))
            .collect();
        let tasks = data
            .runs
            .iter()
            .map(|c| c.run.task_name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Indexed {
            data,
            primaries,
            labels,
            cells,
            tasks,
        }
    }

    /// Each metric's maximum and mean over the prompt variants of a cell.
    fn variants(&self) -> Vec<VariantRow> {
        let mut by_run: HashMap<i64, Vec<&metric::Model>> = HashMap::new();
        for m in &self.data.metrics {
            by_run.entry(m.run_id).or_default().push(m);
        }
        let runs = self.data.runs.iter().map(|c| {
            let metrics = by_run.get(&c.run.id).cloned().unwrap_or_default();
            (&c.run, metrics)
        });
        analysis::variants::summaries(runs)
            .iter()
            .map(VariantRow::of)
            .collect()
    }

    /// Each task with the primary metric of its runs (from a manifest; empty when unreadable).
    fn task_heads(&self) -> Vec<(String, String)> {
        self.tasks
            .iter()
            .map(|t| {
                let metric = self
                    .data
                    .runs
                    .iter()
                    .find(|c| &c.run.task_name == t)
                    .and_then(|c| primary_of(&c.run))
                    .unwrap_or_default();
                (t.clone(), metric)
            })
            .collect()
    }

    fn primary(&self, r: &run::Model) -> Option<&'a metric::Model> {
        self.primaries.get(&r.id).copied()
    }

    /// Rows × tasks of primary metrics, shaded per task by the metric's direction (a bias
    /// share by its distance from 50): the best, and the clearly worse; none where all agree.
    fn grid(&self) -> Vec<GridRow> {
        let mut range: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for c in &self.data.runs {
            if let Some(m) = self.primary(&c.run).filter(|m| m.value.is_finite()) {
                let d = metrics::direction(&m.name).distance(m.value);
                let e = range.entry(c.run.task_name.as_str()).or_insert((d, d));
                e.0 = e.0.min(d);
                e.1 = e.1.max(d);
            }
        }
        let labels: BTreeSet<&str> = self.labels.values().map(String::as_str).collect();
        labels
            .into_iter()
            .map(|label| GridRow {
                label: label.to_string(),
                cells: self
                    .tasks
                    .iter()
                    .map(|t| {
                        let c = *self.cells.get(&(label.to_string(), t.clone()))?;
                        let (lo, hi) = range.get(t.as_str()).copied().unwrap_or((0.0, 1.0));
                        Some(self.grid_cell(c, t, lo, hi))
                    })
                    .collect(),
            })
            .collect()
    }

    fn grid_cell(&self, c: &CellRun, task: &str, lo: f64, hi: f64) -> GridCell {
        let m = self.primary(&c.run);
        let b =
            m.and_then(|m| baseline_for(&self.data.baselines, task, &c.run.model_name, &m.name));
        GridCell {
            run_id: c.run.id,
            status: c.run.status.to_string(),
            value: m.map(value_ci).unwrap_or_default(),
            delta: match (m, b) {
                (Some(m), Some(b)) => format!(
                    "{} vs {} ({})",
                    metric_delta(&m.name, m.value - b.value),
                    metrics::format_value(&m.name, b.value),
                    b.source
                ),
                _ => String::new(),
            },
            tone: match m.filter(|m| m.value.is_finite()) {
                Some(m) if hi - lo > f64::EPSILON * hi.abs().max(1.0) => {
                    let d = metrics::direction(&m.name).distance(m.value);
                    if d <= lo {
                        "shade-best"
                    } else if d >= lo + (hi - lo) / 2.0 {
                        "shade-worse"
                    } else {
                        ""
                    }
                }
                _ => "",
            },
        }
    }

    /// One bar chart per task: the primary metric of each run, with the baseline.
    fn charts(&self) -> Vec<String> {
        let runs = &self.data.runs;
        self.tasks
            .iter()
            .filter_map(|t| {
                let items: Vec<Bar> = runs
                    .iter()
                    .filter(|c| &c.run.task_name == t)
                    .filter_map(|c| {
                        self.primary(&c.run).map(|m| Bar {
                            label: self.labels[&c.run.id].clone(),
                            value: m.value,
                            ci: m.ci_low.zip(m.ci_high),
                        })
                    })
                    .collect();
                let first = runs.iter().find(|c| &c.run.task_name == t)?;
                let metric_name = primary_of(&first.run)?;
                let base =
                    baseline_for(&self.data.baselines, t, &first.run.model_name, &metric_name)
                        .map(|b| (b.value, b.source.as_str()));
                (!items.is_empty()).then(|| {
                    bars(
                        &format!(
                            "{t}: {metric_name} ({})",
                            metrics::direction(&metric_name).describe()
                        ),
                        &metric_name,
                        &items,
                        base,
                    )
                })
            })
            .collect()
    }

    /// Runs finished over time, from the first start.
    fn progress_chart(&self) -> String {
        let runs = &self.data.runs;
        let finished: Vec<_> = runs
            .iter()
            .filter(|c| matches!(c.run.status, RunStatus::Done | RunStatus::Failed))
            .filter_map(|c| c.run.finished_at)
            .collect();
        // One point is no progress to draw.
        if finished.len() < 2 {
            return String::new();
        }
        runs.iter()
            .filter_map(|c| c.run.started_at)
            .min()
            .map(|start| crate::chart::progress(start, &finished, runs.len()))
            .unwrap_or_default()
    }

    /// The page of the runs table, sorted by `key`.
    fn runs_table(&self, key: &str, q: &ListQuery) -> Vec<RunRow> {
        let mut ordered: Vec<&CellRun> = self.data.runs.iter().collect();
        match key {
            "run" => ordered.sort_by_key(|c| c.run.id),
            "status" => ordered.sort_by_key(|c| c.run.status.as_str()),
            _ => {}
        }
        if q.descending(false) {
            ordered.reverse();
        }
        page_of(ordered, q)
            .into_iter()
            .map(|c| RunRow {
                id: c.run.id,
                cell: c.cell.clone(),
                status: c.run.status.to_string(),
                samples: if c.run.status == RunStatus::Done {
                    c.run.n_expected
                } else {
                    self.data.unfinished.get(&c.run.id).copied().unwrap_or(0)
                },
                expected: c.run.n_expected,
                primary: self
                    .primary(&c.run)
                    .map(|m| format!("{} = {}", m.name, value_ci(m)))
                    .unwrap_or_default(),
                random_weights: c.run.random_weights,
                error_head: c
                    .run
                    .error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or_default()
                    .to_string(),
                error: c.run.error.clone().unwrap_or_default(),
            })
            .collect()
    }
}
