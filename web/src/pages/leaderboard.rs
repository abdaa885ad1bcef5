//! `/leaderboard?metric=NAME`: every task × model (× adapter) for one metric, the latest
//! finished run of each, beside the baselines of that metric marked by their source.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use store::dashboard::LeaderboardData;

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::value_ci;
use crate::list::{ListQuery, Pager, page_of, sort_key, sort_links};
use crate::nav::Nav;

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
    pager: Pager,
    sort_links: Vec<(&'static str, String)>,
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<LeaderboardQuery>,
    Query(list): Query<ListQuery>,
    session: MaybeSession,
) -> Result<LeaderboardPage, PageError> {
    let data = app
        .caches
        .leaderboard
        .get_or(q.metric.clone().unwrap_or_default(), || {
            app.store.leaderboard_data(q.metric.clone())
        })
        .await?;
    let LeaderboardData {
        metrics,
        metric,
        rows: runs,
        baselines,
    } = &*data;
    let mut rows: Vec<Row> = runs
        .iter()
        .map(|(r, m)| Row {
            task: r.task_name.clone(),
            model: match &r.adapter_name {
                Some(a) => format!("{} + {a}", r.model_name),
                None => r.model_name.clone(),
            },
            value: value_ci(m),
            sort: m.value,
            run_id: Some(r.id),
            baseline_source: String::new(),
        })
        .collect();
    for b in baselines.iter().filter(|b| &b.metric == metric) {
        rows.push(Row {
            task: b.task.clone(),
            model: b.model.clone(),
            value: metrics::format_value(&b.metric, b.value),
            sort: b.value,
            run_id: None,
            baseline_source: b.source.clone(),
        });
    }
    const KEYS: [&str; 3] = ["task", "model", "value"];
    let key = sort_key(&list, &KEYS, "task").map_err(PageError::bad_request)?;
    let desc = list.descending(key == "value");
    rows.sort_by(|a, b| {
        let o = match key {
            "model" => a.model.cmp(&b.model),
            "value" => a.sort.total_cmp(&b.sort),
            _ => a.task.cmp(&b.task).then(b.sort.total_cmp(&a.sort)),
        };
        if desc { o.reverse() } else { o }
    });
    let base = format!("/leaderboard?metric={}", crate::list::encode(metric));
    let pager = Pager::new(&base, &list, rows.len() as u64);
    let links = sort_links(&base, &list, &KEYS, false);
    let rows = page_of(rows, &list);
    Ok(LeaderboardPage {
        nav: session.nav(),
        metric: metric.clone(),
        metrics: metrics.clone(),
        rows,
        pager,
        sort_links: links,
    })
}
