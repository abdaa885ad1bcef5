//! `/compare?runs=1,2,…`: metrics of two or more runs with deltas to the first, a warning
//! where their manifests differ in a field that changes scores, and their samples side by
//! side when they ran the same task.

use std::collections::{BTreeMap, BTreeSet};

use analysis::compare::{self, Comparison};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use spec::TaskKind;
use store::entities::{metric, run, sample};

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

/// Compare two loaded runs with the page's resamples, off the async threads.
async fn off_thread(
    two: [(i64, spec::manifest::RunManifest, Vec<sample::Model>); 2],
) -> Result<Result<compare::Comparison, compare::Refused>, PageError> {
    let opts = compare::Options {
        iterations: PAGE_ITERATIONS,
        seed: 0,
    };
    tokio::task::spawn_blocking(move || compare::compare_loaded(&two, opts))
        .await
        .map_err(|e| {
            PageError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the comparison failed: {e}"),
            )
        })
}

/// Test every other run against the first, off the async threads.
pub async fn significance(app: &AppState, runs: &[run::Model]) -> Result<Significance, PageError> {
    let mut out = Vec::new();
    for other in &runs[1..] {
        let loaded = compare::load(&app.store, runs[0].id, other.id).await?;
        let result = off_thread(loaded).await?;
        out.push((other.id, result.map_err(|e| e.reason)));
    }
    Ok(out)
}

/// A significance row for the page.
pub struct TestRow {
    metric: String,
    n: usize,
    a: String,
    b: String,
    delta: String,
    test: &'static str,
    p: String,
    p_holm: String,
    significant: bool,
}

/// The first run against one other run, on the examples they share.
pub struct PairView {
    other: i64,
    shared: usize,
    only_a: usize,
    only_b: usize,
    tests: Vec<TestRow>,
    disagreements: usize,
    /// `, N worse` when some changes are regressions.
    worse: String,
    refused: Option<String>,
}

/// A run's own metrics, over all its examples (no difference is taken from these).
pub struct OwnRow {
    name: String,
    cells: Vec<String>,
}

/// A run in the page's header.
pub struct RunHead {
    id: i64,
    label: String,
    n: i64,
    examples: String,
    random: bool,
}

/// One example across the runs (the first run's, then each other run's with the same inputs).
pub struct ExampleRow {
    idx: i64,
    /// The example's inputs, as the task kind shows them (a pair's sentences, a prompt, a text).
    inputs: Vec<(&'static str, String)>,
    /// Each run's outcome on it (`–` where a run does not have the example).
    outcomes: Vec<String>,
    reference: String,
    /// In the disagreements view: the change on the primary metric.
    change: String,
    regression: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "compare.html")]
pub struct ComparePage {
    nav: Nav,
    runs: Vec<RunHead>,
    ids: String,
    differences: Vec<(String, Vec<String>)>,
    own: Vec<OwnRow>,
    same_task: bool,
    first: i64,
    pairs: Vec<PairView>,
    iterations: usize,
    primary: String,
    /// The inputs' column names.
    input_labels: Vec<&'static str>,
    examples: Vec<ExampleRow>,
    /// The examples have references (generation, chain, classification).
    has_reference: bool,
    diff_only: bool,
    pager: Pager,
}

/// The inputs of a sample, as its task kind shows them.
fn inputs(kind: Option<TaskKind>, s: &sample::Model) -> Vec<(&'static str, String)> {
    let data: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
    match kind {
        Some(TaskKind::LoglikPair) => vec![
            (
                "group",
                data["group"].as_str().unwrap_or_default().to_string(),
            ),
            ("more stereotypical", s.prompt.clone()),
            (
                "less stereotypical",
                s.reference.clone().unwrap_or_default(),
            ),
        ],
        _ => vec![("input", s.prompt.clone())],
    }
}

/// A run's outcome on a sample, as its task kind shows it.
fn outcome(kind: Option<TaskKind>, labels: &[String], s: &sample::Model) -> String {
    let data: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
    match kind {
        Some(TaskKind::LoglikPair) => {
            let (m, l) = (data["perp_more"].as_f64(), data["perp_less"].as_f64());
            match (m, l) {
                (Some(m), Some(l)) => format!(
                    "prefers {} ({} vs {})",
                    if m < l { "more" } else { "less" },
                    crate::format::num(m),
                    crate::format::num(l)
                ),
                _ => "–".into(),
            }
        }
        Some(TaskKind::Classification) => {
            let name = |v: &str| {
                v.parse::<usize>()
                    .ok()
                    .and_then(|i| labels.get(i))
                    .cloned()
                    .unwrap_or_else(|| v.to_string())
            };
            let out = s.output.clone().unwrap_or_default();
            let right = s.reference.as_deref() == Some(out.as_str());
            format!("{}{}", name(&out), if right { " ✓" } else { " ✗" })
        }
        Some(TaskKind::AttributeScores) => {
            let scores: Vec<String> = data
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| {
                            Some(format!("{k} {}", crate::format::num(v.as_f64()?)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{}\n{}",
                s.output.clone().unwrap_or_default(),
                scores.join(", ")
            )
        }
        _ => s.output.clone().unwrap_or_default(),
    }
}

/// Query parameters besides the runs and the list's.
#[derive(Debug, Default, serde::Deserialize)]
struct CompareQuery {
    #[serde(default)]
    diff: bool,
}

pub async fn page(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    session: MaybeSession,
) -> Result<ComparePage, PageError> {
    let (ids, q) = parse(raw.as_deref())?;
    let diff_only = format!("/?{}", raw.as_deref().unwrap_or(""))
        .parse()
        .ok()
        .and_then(|uri| axum::extract::Query::<CompareQuery>::try_from_uri(&uri).ok())
        .is_some_and(|c| c.0.diff);
    let (runs, metrics) = load(&app, &ids).await?;
    let mut table: BTreeMap<&str, BTreeMap<i64, &metric::Model>> = BTreeMap::new();
    for m in &metrics {
        table.entry(&m.name).or_default().insert(m.run_id, m);
    }
    let own = table
        .iter()
        .map(|(name, by_run)| OwnRow {
            name: name.to_string(),
            cells: runs
                .iter()
                .map(|r| {
                    by_run
                        .get(&r.id)
                        .map_or_else(|| "–".into(), |m| format!("{} · n {}", value_ci(m), m.n))
                })
                .collect(),
        })
        .collect();
    let same_task = runs.iter().all(|r| r.task_name == runs[0].task_name);
    let task = runs[0].manifest().ok().map(|m| m.task);
    let kind = task.as_ref().map(|t| t.kind);
    let labels = task.as_ref().map(|t| t.labels.clone()).unwrap_or_default();
    let primary = task
        .as_ref()
        .map(|t| t.primary_metric.clone())
        .unwrap_or_default();
    let mut pairs = Vec::new();
    let (mut examples, mut total) = (Vec::new(), 0u64);
    if same_task {
        let loaded = load_samples(&app, &runs).await?;
        for (i, other) in runs.iter().enumerate().skip(1) {
            pairs.push(pair_view(&loaded, i, other.id).await?);
        }
        let first = &loaded[0].2;
        // The first run's examples, each with the others' same-input examples.
        let matched: Vec<BTreeMap<i64, &sample::Model>> = loaded[1..]
            .iter()
            .map(|(_, _, other)| {
                compare::shared_examples(kind.unwrap_or(TaskKind::Generation), first, other)
                    .into_iter()
                    .map(|(a, b)| (a.idx, b))
                    .collect()
            })
            .collect();
        let changes: Option<Vec<compare::Disagreement>> = if diff_only && runs.len() == 2 {
            let loaded = [loaded[0].clone(), loaded[1].clone()];
            let opts = compare::Options {
                iterations: 1,
                seed: 0,
            };
            tokio::task::spawn_blocking(move || compare::compare_loaded(&loaded, opts))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|c| c.disagreements)
        } else {
            None
        };
        let mut first_sorted: Vec<&sample::Model> = first.iter().collect();
        first_sorted.sort_by_key(|s| s.idx);
        let order: Vec<(&sample::Model, String, bool)> = match &changes {
            Some(changes) => changes
                .iter()
                .filter_map(|d| {
                    let s = first_sorted.iter().find(|s| s.idx == d.idx_a)?;
                    Some((
                        *s,
                        format!(
                            "{} → {}",
                            metrics::format_value(&d.metric, d.a),
                            metrics::format_value(&d.metric, d.b)
                        ),
                        d.regression,
                    ))
                })
                .collect(),
            None => first_sorted
                .into_iter()
                .map(|s| (s, String::new(), false))
                .collect(),
        };
        total = order.len() as u64;
        let w = q.window();
        examples = order
            .into_iter()
            .skip(w.offset as usize)
            .take(w.limit as usize)
            .map(|(s, change, regression)| ExampleRow {
                idx: s.idx,
                inputs: inputs(kind, s),
                outcomes: std::iter::once(outcome(kind, &labels, s))
                    .chain(matched.iter().map(|m| {
                        m.get(&s.idx)
                            .map_or_else(|| "–".into(), |o| outcome(kind, &labels, o))
                    }))
                    .collect(),
                reference: match kind {
                    Some(TaskKind::LoglikPair) | Some(TaskKind::AttributeScores) => String::new(),
                    _ => s.reference.clone().unwrap_or_default(),
                },
                change,
                regression,
            })
            .collect();
    }
    let ids_param = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let base = if diff_only {
        format!("/compare?runs={ids_param}&diff=true")
    } else {
        format!("/compare?runs={ids_param}")
    };
    let input_labels = examples
        .first()
        .map(|e| e.inputs.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    Ok(ComparePage {
        nav: session.nav(),
        runs: runs
            .iter()
            .map(|r| RunHead {
                id: r.id,
                label: crate::pages::sweep::row_label(r),
                n: r.n_expected,
                examples: r.examples_id.as_deref().map_or_else(
                    || "unknown".into(),
                    |e| spec::examples::short(e).to_string(),
                ),
                random: r.random_weights,
            })
            .collect(),
        pager: Pager::new(&base, &q, total),
        ids: ids_param,
        differences: differences(&runs),
        own,
        same_task,
        first: runs[0].id,
        pairs,
        iterations: PAGE_ITERATIONS,
        primary,
        input_labels,
        has_reference: examples.iter().any(|e| !e.reference.is_empty()),
        examples,
        diff_only,
    })
}

/// Every run's manifest and samples.
async fn load_samples(
    app: &AppState,
    runs: &[run::Model],
) -> Result<Vec<(i64, spec::manifest::RunManifest, Vec<sample::Model>)>, PageError> {
    let mut out = Vec::new();
    for r in runs {
        out.push((r.id, r.manifest()?, app.store.samples(r.id).await?));
    }
    Ok(out)
}

/// The first run against run `loaded[i]`: the tests on their shared examples, off the async
/// threads.
async fn pair_view(
    loaded: &[(i64, spec::manifest::RunManifest, Vec<sample::Model>)],
    i: usize,
    other: i64,
) -> Result<PairView, PageError> {
    let result = off_thread([loaded[0].clone(), loaded[i].clone()]).await?;
    Ok(match result {
        Ok(c) => PairView {
            other,
            shared: c.shared,
            only_a: c.only_a,
            only_b: c.only_b,
            disagreements: c.disagreements.len(),
            worse: match c.disagreements.iter().filter(|d| d.regression).count() {
                0 => String::new(),
                n => format!(", {n} worse"),
            },
            tests: c
                .tests
                .into_iter()
                .map(|t| TestRow {
                    n: t.n,
                    a: metrics::format_value(&t.metric, t.a),
                    b: metrics::format_value(&t.metric, t.b),
                    delta: metric_delta(&t.metric, t.delta),
                    test: t.test.label(),
                    p: p_value(t.p),
                    p_holm: p_value(t.p_holm),
                    significant: t.p_holm < 0.05,
                    metric: t.metric,
                })
                .collect(),
            refused: None,
        },
        Err(e) => PairView {
            other,
            shared: 0,
            only_a: 0,
            only_b: 0,
            tests: Vec::new(),
            disagreements: 0,
            worse: String::new(),
            refused: Some(e.reason),
        },
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
