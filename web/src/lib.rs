//! The nlebench dashboard: server-rendered pages (axum + askama) over the store — sweeps,
//! the model × task grid, runs with their samples, comparisons, a leaderboard, workers and
//! baselines, with CSV/JSON downloads. Every page works without JavaScript; pages of active
//! sweeps and runs refresh themselves.

pub mod access;
pub mod actions;
pub mod auth;
pub mod cache;
pub mod chart;
pub mod error;
pub mod export;
pub mod format;
pub mod limits;
pub mod list;
pub mod live;
pub mod nav;
pub mod pages;
pub mod prometheus;
pub mod proxy;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use orchestrator::queue::Queue;
use store::Store;
use store::dashboard::StaleTest;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Whether a stored metric (name, version) comes from an older implementation.
    pub stale: StaleTest,
    /// Who may view the pages (actions always need an editor).
    pub access: access::Access,
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// The queue retried jobs go on.
    pub queue: Option<Queue>,
    /// Short-lived caches of aggregate page data.
    pub caches: std::sync::Arc<cache::Caches>,
    /// Sign-in attempts per client and per account.
    pub limits: std::sync::Arc<limits::SignInLimits>,
    /// The live streams' shared polls.
    pub polls: std::sync::Arc<live::Polls>,
    /// The queue name the workers share (a label of `/metrics`).
    pub queue_name: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: proxy::TrustedProxies,
}

/// The dashboard's routes.
pub fn router(app: AppState) -> Router {
    auth::prepare();
    Router::new()
        .route("/", get(pages::sweeps::page))
        .route("/archive", get(pages::sweeps::archive))
        .route("/sweeps/{name}", get(pages::sweep::page))
        .route("/sweeps/{name}/events", get(live::sweep_events))
        .route("/sweeps/{name}/report", get(pages::report::page))
        .route("/sweeps/{name}/{file}", get(export::sweep))
        .route("/runs/{id}", get(pages::run::page))
        .route("/runs/{id}/{file}", get(export::samples))
        .route("/compare", get(pages::compare::page))
        .route("/compare.csv", get(export::comparison_csv))
        .route("/compare.json", get(export::comparison_json))
        .route("/leaderboard", get(pages::leaderboard::page))
        .route("/workers", get(pages::workers::page))
        .route("/baselines", get(pages::baselines::page))
        .route("/baselines/import", post(actions::import_baselines))
        .route("/sweeps/{name}/cancel", post(actions::cancel))
        .route("/sweeps/{name}/retry", post(actions::retry))
        .route("/sweeps/{name}/archive", post(actions::archive))
        .route("/sweeps/{name}/tags", post(actions::tag_sweep))
        .route("/sweeps/{name}/notes", post(actions::note_sweep))
        .route("/runs/{id}/tags", post(actions::tag_run))
        .route("/runs/{id}/notes", post(actions::note_run))
        .route("/sweeps/{name}/restore", post(actions::restore))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_viewer,
        ))
        .route("/metrics", get(prometheus::metrics))
        .route("/style.css", get(stylesheet))
        .with_state(app)
}

/// `/style.css`: the one stylesheet of every page (the sign-in page's too, so no sign-in).
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
}

/// Any other path: the error page with 404, saying where to go.
async fn not_found(uri: axum::http::Uri) -> error::PageError {
    error::PageError::not_found(format!(
        "there is no page {}; the sweeps are listed at /",
        uri.path()
    ))
}

/// How long open requests (live streams included) get to finish after a stop.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve the dashboard on `addr` until `stop` completes: it then takes no new connections,
/// lets open requests finish for up to [`SHUTDOWN_GRACE`], and returns.
pub async fn serve<F>(app: AppState, addr: SocketAddr, stop: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("dashboard on http://{addr}/");
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        stop.await;
        tracing::info!("stopping: open requests get {SHUTDOWN_GRACE:?}");
        let _ = stopping_tx.send(true);
    });
    tokio::select! {
        r = server => r,
        _ = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}
