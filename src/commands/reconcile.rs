//! `nlebench reconcile`: one reconciler pass (workers run the same pass periodically).

use std::process::ExitCode;

use orchestrator::reconcile::{ReconcileOptions, reconcile as pass};

use crate::args::{Global, ReconcileArgs};
use crate::context;

pub async fn reconcile(g: &Global, a: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let mut queue = context::queue(&s).await?;
    let report = pass(
        &store,
        &mut queue,
        ReconcileOptions {
            stale_after: context::alive_within(&s),
            grace: context::alive_within(&s),
            dry_run: a.dry_run,
        },
    )
    .await?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !report.ran {
        outln!("another reconciler pass is running; nothing done");
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if a.dry_run { "would queue" } else { "queued" };
    for r in &report.repairs {
        outln!(
            "{verb} job {} (run {}, shard {}) again: {}",
            r.job.job_id,
            r.job.run_id,
            r.job.shard,
            r.reason
        );
    }
    outln!(
        "{} job(s) {verb} again; {} without a live worker are still on the queue",
        report.repairs.len(),
        report.on_queue
    );
    Ok(ExitCode::SUCCESS)
}
