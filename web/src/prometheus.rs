//! `/metrics`: the store's state in Prometheus' text format, for the monitoring stacks teams
//! run. Outside sign-in (a scraper has no session): it shows counts and worker names only.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use orchestrator::telemetry;

use crate::AppState;
use crate::error::PageError;

/// Runs, jobs and workers by state, queue depth and heartbeat ages.
pub async fn metrics(State(app): State<AppState>) -> Result<Response, PageError> {
    let text = telemetry::store_metrics(&app.store, &app.queue_name).await?;
    Ok(([(CONTENT_TYPE, telemetry::CONTENT_TYPE)], text).into_response())
}

/// Serve one worker's counters at `/metrics` on `listener` (`nlebench worker --metrics-addr`).
pub async fn serve_worker(
    telemetry: std::sync::Arc<telemetry::WorkerTelemetry>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = telemetry.encode();
            async move { ([(CONTENT_TYPE, telemetry::CONTENT_TYPE)], text) }
        }),
    );
    axum::serve(listener, app).await
}
