//! `nlebench worker`: pull jobs and run them until stopped (SIGINT/SIGTERM, or idle).

use std::process::ExitCode;
use std::time::Duration;

use store::Store;
use tokio::sync::watch;
use tracing::{info, warn};
use worker::lifecycle;

use crate::args::{Global, WorkerArgs};
use crate::context;

pub async fn worker(g: &Global, a: WorkerArgs, hooks: &worker::Hooks) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = Store::connect(&s.database_url).await?;
    if s.embedded {
        store.migrate().await?;
    } else {
        store.require_migrated().await?;
    }
    let queue = context::queue(&s).await?;
    let mut opts = context::worker_options(
        a.name,
        None,
        a.exit_when_idle.map(Duration::from_secs),
        hooks,
    );
    opts.affinity = !a.no_affinity;
    if let Some(addr) = a.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot serve metrics on {addr}: {e}\n  fix: choose a free address with --metrics-addr / NLEBENCH_METRICS_ADDR"
            )
        })?;
        info!("metrics on http://{addr}/metrics");
        let telemetry = opts.telemetry.clone();
        tokio::spawn(async move {
            if let Err(e) = web::prometheus::serve_worker(telemetry, listener).await {
                warn!("the metrics endpoint stopped: {e}");
            }
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        lifecycle::wait_for_signal().await;
        info!(
            "stopping after the current batch; its job goes back to the queue (a second signal stops at once)"
        );
        let _ = stop_tx.send(true);
        lifecycle::wait_for_signal().await;
        warn!("second signal: stopping now");
        std::process::exit(130);
    });
    info!(worker = %opts.name, queue = %s.queue.name, "worker started");
    lifecycle::run(&s, store, queue, opts, stop_rx).await?;
    Ok(ExitCode::SUCCESS)
}
