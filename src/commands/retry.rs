//! `nlebench retry SWEEP`: put a sweep's failed and cancelled runs back on the queue; they
//! resume from their stored samples.

use std::process::ExitCode;

use crate::args::{Global, SweepArg};
use crate::context;

pub async fn retry(g: &Global, a: SweepArg) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let mut queue = context::queue(&s).await?;
    let jobs = store.retry_sweep(&a.sweep).await?;
    queue.push(&jobs, 0, None).await?;
    store.mark_enqueued(&jobs).await?;
    outln!(
        "queued {} job(s) of failed or cancelled runs of sweep {}",
        jobs.len(),
        a.sweep
    );
    Ok(ExitCode::SUCCESS)
}
