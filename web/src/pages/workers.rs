//! `/workers`: name, host, device, current job, last heartbeat and jobs done.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use chrono::Utc;

use crate::AppState;
use crate::auth::{MaybeSession, Nav};
use crate::error::PageError;
use crate::format::{duration, time};
use crate::list::{ListQuery, Pager};

/// A worker row.
pub struct Row {
    name: String,
    host: String,
    device: String,
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
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
    session: MaybeSession,
) -> Result<WorkersPage, PageError> {
    let (workers, total) = app.store.workers_page(q.window()).await?;
    let now = Utc::now();
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
            status: w.status,
            jobs_done: w.jobs_done,
        })
        .collect();
    Ok(WorkersPage {
        nav: Nav::of(&session),
        rows,
        pager: Pager::new("/workers", &q, total),
    })
}
