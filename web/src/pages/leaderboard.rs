//! `/leaderboard?metric=NAME`: every task × model (× adapter) for one metric, the latest
//! finished run of each, beside the baselines of that metric marked by their source.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{MaybeSession, Nav};
use crate::error::PageError;
use crate::format::{num, value_ci};

/// `?metric=NAME`.
#[derive(Debug, Deserialize)]
pub struct LeaderboardQuery {
    metric: Option<String>,
}

/// A row: a run's value or a baseline.
pub struct Row {
    task: String,
    model: String,
    value: String,
    sort: f64,
    run_id: Option<i64>,
    baseline_source: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "leaderboard.html")]
pub struct LeaderboardPage {
    nav: Nav,
    metric: String,
    metrics: Vec<String>,
    rows: Vec<Row>,
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<LeaderboardQuery>,
    session: MaybeSession,
) -> Result<LeaderboardPage, PageError> {
    let metrics = app.store.metric_names().await?;
    let metric = q
        .metric
        .or_else(|| {
            ["bias_paper", "rouge_l", "accuracy"]
                .iter()
                .find(|m| metrics.iter().any(|x| x == *m))
                .map(|m| m.to_string())
        })
        .or_else(|| metrics.first().cloned())
        .unwrap_or_default();
    let mut latest: BTreeMap<(String, String), Row> = BTreeMap::new();
    for (m, r) in app.store.metric_of_done_runs(&metric).await? {
        let Some(r) = r else { continue };
        let model = match &r.adapter_name {
            Some(a) => format!("{} + {a}", r.model_name),
            None => r.model_name.clone(),
        };
        latest
            .entry((r.task_name.clone(), model.clone()))
            .or_insert(Row {
                task: r.task_name.clone(),
                model,
                value: value_ci(&m),
                sort: m.value,
                run_id: Some(r.id),
                baseline_source: String::new(),
            });
    }
    let mut rows: Vec<Row> = latest.into_values().collect();
    for b in app.store.baselines().await? {
        if b.metric == metric {
            rows.push(Row {
                task: b.task,
                model: b.model,
                value: num(b.value),
                sort: b.value,
                run_id: None,
                baseline_source: b.source,
            });
        }
    }
    rows.sort_by(|a, b| a.task.cmp(&b.task).then(b.sort.total_cmp(&a.sort)));
    Ok(LeaderboardPage {
        nav: Nav::of(&session),
        metric,
        metrics,
        rows,
    })
}
