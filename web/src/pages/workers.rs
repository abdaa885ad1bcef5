//! `/workers`: name, host, device, engine release, current job, last heartbeat and jobs done.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use chrono::Utc;

use crate::AppState;
use crate::auth::MaybeSession;
use crate::error::PageError;
use crate::format::{duration, time};
use crate::list::{ListQuery, Pager, sort_key, sort_links};
use crate::nav::Nav;

/// A worker row.
pub struct Row {
    name: String,
    host: String,
    device: String,
    release: String,
    status: String,
    job: String,
    heartbeat: String,
    jobs_done: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "workers.html")]
pub struct WorkersPage {
    nav: Nav,
    rows: Vec<Row>,
    pager: Pager,
    sort_links: Vec<(&'static str, String)>,
    hidden: u64,
    all: bool,
}

/// `?all=1` shows the workers stopped for more than a day too.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ShowAll {
    all: Option<String>,
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    Query(show): Query<ShowAll>,
    session: MaybeSession,
) -> Result<WorkersPage, PageError> {
    const KEYS: [&str; 4] = ["heartbeat", "name", "host", "jobs"];
    let sort = sort_key(&q, &KEYS, "heartbeat").map_err(PageError::bad_request)?;
    let desc = q.descending(matches!(sort, "heartbeat" | "jobs"));
    let now = Utc::now();
    let all = show.all.as_deref().is_some_and(|v| v != "0");
    let cut = (!all).then(|| now - chrono::Duration::days(1));
    let (workers, total, hidden) = app.store.workers_page(sort, desc, q.window(), cut).await?;
    let rows = workers
        .into_iter()
        .map(|w| Row {
            heartbeat: format!(
                "{} ({} ago)",
                time(&w.last_heartbeat),
                duration((now - w.last_heartbeat).num_seconds().max(0))
            ),
            job: w.current_job.map(|j| j.to_string()).unwrap_or_default(),
            name: w.name,
            host: format!("{} (pid {})", w.host, w.pid),
            device: w.device,
            release: w.release.unwrap_or_else(|| "(older)".into()),
            status: w.status,
            jobs_done: w.jobs_done,
        })
        .collect();
    Ok(WorkersPage {
        nav: session.nav(),
        rows,
        pager: Pager::new("/workers", &q, total),
        sort_links: sort_links("/workers", &q, &KEYS, true),
        hidden,
        all,
    })
}
