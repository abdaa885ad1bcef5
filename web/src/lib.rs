//! The nlebench dashboard: server-rendered pages (axum + askama) over the store.
//!
//! This first version lists sweeps and shows a sweep's runs with their status, progress and
//! primary metric; it works without JavaScript and refreshes itself while runs are active.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orchestrator::manifest::RunManifest;
use orchestrator::store::{Store, StoreError};

/// One row of the sweeps page.
struct SweepRow {
    name: String,
    updated: String,
    counts: Vec<(&'static str, usize)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "sweeps.html")]
struct SweepsPage {
    sweeps: Vec<SweepRow>,
    statuses: Vec<&'static str>,
}

/// One run of the sweep page.
struct RunRow {
    id: i64,
    cell: String,
    status: String,
    samples: u64,
    expected: i64,
    primary: String,
    random_weights: bool,
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sweep.html")]
struct SweepPage {
    name: String,
    description: String,
    counts: Vec<(&'static str, usize)>,
    runs: Vec<RunRow>,
    active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    message: String,
}

/// An error page with a status code.
struct PageError(StatusCode, String);

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSweep(name) => {
                PageError(StatusCode::NOT_FOUND, format!("no sweep named {name}"))
            }
            other => PageError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, ErrorPage { message: self.1 }).into_response()
    }
}

async fn sweeps(State(store): State<Store>) -> Result<SweepsPage, PageError> {
    let mut rows = Vec::new();
    for s in store.sweeps().await? {
        let st = store.sweep_status(&s.name).await?;
        rows.push(SweepRow {
            name: s.name,
            updated: s.updated_at.format("%Y-%m-%d %H:%M").to_string(),
            counts: st.counts(),
        });
    }
    let statuses = ["queued", "running", "done", "failed", "cancelled"].to_vec();
    Ok(SweepsPage {
        sweeps: rows,
        statuses,
    })
}

async fn sweep(
    State(store): State<Store>,
    Path(name): Path<String>,
) -> Result<SweepPage, PageError> {
    let st = store.sweep_status(&name).await?;
    let runs = st
        .runs
        .iter()
        .map(|r| {
            let primary = serde_json::from_str::<RunManifest>(&r.run.manifest)
                .ok()
                .and_then(|m| {
                    r.metrics
                        .iter()
                        .find(|x| x.name == m.task.primary_metric)
                        .map(|x| match (x.ci_low, x.ci_high) {
                            (Some(lo), Some(hi)) => {
                                format!("{} = {:.2} [{lo:.2}, {hi:.2}]", x.name, x.value)
                            }
                            _ => format!("{} = {:.2}", x.name, x.value),
                        })
                })
                .unwrap_or_default();
            RunRow {
                id: r.run.id,
                cell: r.cell.clone(),
                status: r.run.status.clone(),
                samples: r.samples_done,
                expected: r.run.n_expected,
                primary,
                random_weights: r.run.random_weights,
                error: r.run.error.clone().unwrap_or_default(),
            }
        })
        .collect();
    Ok(SweepPage {
        active: !st.finished(),
        name: st.sweep.name.clone(),
        description: st.sweep.description.clone().unwrap_or_default(),
        counts: st.counts(),
        runs,
    })
}

/// The dashboard's routes.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(sweeps))
        .route("/sweeps/{name}", get(sweep))
        .with_state(store)
}

/// Serve the dashboard on `addr` until the process stops.
pub async fn serve(store: Store, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("dashboard on http://{addr}/");
    axum::serve(listener, router(store)).await
}
