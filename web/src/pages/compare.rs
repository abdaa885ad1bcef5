//! `/compare?runs=1,2,…`: metrics of two or more runs with deltas to the first, a warning
//! where their manifests differ in a field that changes scores, and their samples side by
//! side when they ran the same task.

use std::collections::{BTreeMap, BTreeSet};

use analysis::compare::{self, Comparison};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use store::entities::{metric, run};

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::{metric_delta, value_ci};
use crate::list::{ListQuery, Pager};
use crate::nav::Nav;

/// Manifest fields that change scores: (JSON pointer, label).
/// The run ids of `runs=1,2` and/or `run=1&run=2`, and the list parameters.
pub fn parse(raw: Option<&str>) -> Result<(Vec<i64>, ListQuery), PageError> {
    let mut ids = Vec::new();
    let mut rest = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "runs" | "run" => {
                for id in v.replace("%2C", ",").split(',').filter(|p| !p.is_empty()) {
                    ids.push(
                        id.trim().parse::<i64>().map_err(|_| {
                            PageError::bad_request(format!("`{id}` is not a run id"))
                        })?,
                    );
                }
            }
            _ => rest.push(pair),
        }
    }
    let q = list_query(&rest.join("&"));
    ids.dedup();
    if ids.len() < 2 {
        return Err(PageError::bad_request(
            "compare needs two or more runs: /compare?runs=1,2",
        ));
    }
    Ok((ids, q))
}

/// The list parameters of a query string.
fn list_query(s: &str) -> ListQuery {
    format!("/?{s}")
        .parse()
        .ok()
        .and_then(|uri| axum::extract::Query::<ListQuery>::try_from_uri(&uri).ok())
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Runs and metrics in the order asked.
pub async fn load(
    app: &AppState,
    ids: &[i64],
) -> Result<(Vec<run::Model>, Vec<metric::Model>), PageError> {
    let mut runs = app.store.runs_by_id(ids).await?;
    if let Some(missing) = ids.iter().find(|id| !runs.iter().any(|r| r.id == **id)) {
        return Err(PageError::not_found(format!("no run {missing}")));
    }
    runs.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
    let metrics = app.store.metrics_of(ids).await?;
    Ok((runs, metrics))
}

/// Fields that change scores whose values differ between the runs, with the values (a run
/// whose manifest cannot be read shows `?`).
pub fn differences(runs: &[run::Model]) -> Vec<(String, Vec<String>)> {
    let fields: Vec<Option<_>> = runs
        .iter()
        .map(|r| r.manifest().ok().map(|m| m.score_fields()))
        .collect();
    let Some(labels) = fields
        .iter()
        .flatten()
        .next()
        .map(|f| f.clone().map(|(l, _)| l))
    else {
        return Vec::new();
    };
    labels
        .iter()
        .enumerate()
        .filter_map(|(i, label)| {
            let values: Vec<String> = fields
                .iter()
                .map(|f| f.as_ref().map_or("?".into(), |f| f[i].1.clone()))
                .collect();
            (values.iter().collect::<BTreeSet<_>>().len() > 1).then(|| (label.to_string(), values))
        })
        .collect()
}

/// Significance of the differences between the first run and each other run (same task):
/// (other run, its tests or the reason they were refused).
pub type Significance = Vec<(i64, Result<Comparison, String>)>;

/// Bootstrap resamples on the page (the CLI's `nlebench compare` defaults to 10,000).
pub const PAGE_ITERATIONS: usize = 2_000;

/// Test every other run against the first, off the async threads.
pub async fn significance(app: &AppState, runs: &[run::Model]) -> Result<Significance, PageError> {
    let mut out = Vec::new();
    for other in &runs[1..] {
        let loaded = compare::load(&app.store, runs[0].id, other.id).await?;
        let opts = compare::Options {
            iterations: PAGE_ITERATIONS,
            seed: 0,
        };
        let result = tokio::task::spawn_blocking(move || compare::compare_loaded(&loaded, opts))
            .await
            .map_err(|e| {
                PageError(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the comparison failed: {e}"),
                )
            })?;
        out.push((other.id, result.map_err(|e| e.reason)));
    }
    Ok(out)
}

/// A significance row for the page.
pub struct TestRow {
    run: i64,
    metric: String,
    n: usize,
    delta: String,
    test: &'static str,
    p: String,
    p_holm: String,
    significant: bool,
}

/// A metric row.
pub struct Row {
    name: String,
    cells: Vec<String>,
}

/// Samples at one index across the runs.
pub struct SampleRow {
    idx: i64,
    prompt: String,
    outputs: Vec<String>,
    reference: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "compare.html")]
pub struct ComparePage {
    nav: Nav,
    runs: Vec<(i64, String)>,
    ids: String,
    differences: Vec<(String, Vec<String>)>,
    rows: Vec<Row>,
    same_task: bool,
    samples: Vec<SampleRow>,
    pager: Pager,
    first: i64,
    tests: Vec<TestRow>,
    refused: Vec<(i64, String)>,
    iterations: usize,
}

pub async fn page(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    session: MaybeSession,
) -> Result<ComparePage, PageError> {
    let (ids, q) = parse(raw.as_deref())?;
    let (runs, metrics) = load(&app, &ids).await?;
    let mut table: BTreeMap<&str, BTreeMap<i64, &metric::Model>> = BTreeMap::new();
    for m in &metrics {
        table.entry(&m.name).or_default().insert(m.run_id, m);
    }
    let rows = table
        .iter()
        .map(|(name, by_run)| {
            let first = by_run.get(&runs[0].id).map(|m| m.value);
            Row {
                name: name.to_string(),
                cells: runs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match by_run.get(&r.id) {
                        Some(m) if i > 0 => match first {
                            Some(f) => {
                                format!(
                                    "{} (Δ {})",
                                    value_ci(m),
                                    metric_delta(&m.name, m.value - f)
                                )
                            }
                            None => value_ci(m),
                        },
                        Some(m) => value_ci(m),
                        None => "–".into(),
                    })
                    .collect(),
            }
        })
        .collect();
    let same_task = runs.iter().all(|r| r.task_name == runs[0].task_name);
    let (mut tests, mut refused) = (Vec::new(), Vec::new());
    if same_task {
        for (id, result) in significance(&app, &runs).await? {
            match result {
                Ok(c) => tests.extend(c.tests.into_iter().map(|t| TestRow {
                    run: id,
                    n: t.n,
                    delta: metric_delta(&t.metric, t.delta),
                    test: t.test.label(),
                    p: p_value(t.p),
                    p_holm: p_value(t.p_holm),
                    significant: t.p_holm < 0.05,
                    metric: t.metric,
                })),
                Err(reason) => refused.push((id, reason)),
            }
        }
    }
    let ids_param = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let (samples, total) = if same_task {
        let (first, total) = app
            .store
            .samples_page(runs[0].id, q.q.as_deref(), q.window())
            .await?;
        let idx: Vec<i64> = first.iter().map(|s| s.idx).collect();
        let all = app.store.samples_at(&ids, &idx).await?;
        let rows = first
            .iter()
            .map(|s| SampleRow {
                idx: s.idx,
                prompt: s.prompt.clone(),
                reference: s.reference.clone().unwrap_or_default(),
                outputs: runs
                    .iter()
                    .map(|r| {
                        all.iter()
                            .find(|x| x.run_id == r.id && x.idx == s.idx)
                            .map(|x| x.output.clone().unwrap_or_else(|| x.data.clone()))
                            .unwrap_or_default()
                    })
                    .collect(),
            })
            .collect();
        (rows, total)
    } else {
        (vec![], 0)
    };
    Ok(ComparePage {
        nav: session.nav(),
        runs: runs
            .iter()
            .map(|r| (r.id, crate::pages::sweep::row_label(r)))
            .collect(),
        pager: Pager::new(&format!("/compare?runs={ids_param}"), &q, total),
        ids: ids_param,
        differences: differences(&runs),
        rows,
        same_task,
        samples,
        first: runs[0].id,
        tests,
        refused,
        iterations: PAGE_ITERATIONS,
    })
}

/// A p-value for people: 4 decimals, `< 0.0001` below that.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}
