//! `nlebench cancel SWEEP`: cancel a sweep's queued and running runs; workers stop them after
//! the current batch.

use std::process::ExitCode;

use crate::args::{Global, SweepArg};
use crate::context;

pub async fn cancel(g: &Global, a: SweepArg) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let n = store.cancel_sweep(&a.sweep).await?;
    outln!(
        "cancelled {n} run(s) of sweep {}; workers stop them after the current batch",
        a.sweep
    );
    Ok(ExitCode::SUCCESS)
}
