//! The reconciler: puts back on the queue every unfinished job of an active run that no live
//! worker holds and the queue no longer holds (Redis flushed or restarted without
//! persistence, a push lost, a worker killed between two writes). Idempotent: a job it pushed
//! is held by the queue on the next pass, and a duplicate delivery is ignored by the claim.
//! Run by `nlebench reconcile` and periodically by every worker, one pass at a time.

use std::time::Duration;

use serde::Serialize;

use crate::queue::{Queue, QueueError};
use store::{JobRef, Store, StoreError, Unheld};

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// How a pass treats jobs.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileOptions {
    /// A worker silent for longer than this is gone.
    pub stale_after: Duration,
    /// Jobs queued or created within this window are left alone (their push may be on its way).
    pub grace: Duration,
    /// Report only; change nothing.
    pub dry_run: bool,
}

/// One job the pass put (or, in a dry run, would put) back on the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// The job.
    pub job: JobRef,
    /// Why, in words.
    pub reason: String,
}

/// What a pass found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `false` when another pass held the lock (nothing was checked).
    pub ran: bool,
    /// Unfinished jobs without a live holder that the queue still holds (left alone).
    pub on_queue: usize,
    /// Jobs put back on the queue.
    pub repairs: Vec<Repair>,
}

/// One reconciler pass.
pub async fn reconcile(
    store: &Store,
    queue: &mut Queue,
    opts: ReconcileOptions,
) -> Result<Report, ReconcileError> {
    let Some(lock) = store.reconcile_lock().await? else {
        return Ok(Report {
            ran: false,
            on_queue: 0,
            repairs: Vec::new(),
        });
    };
    // The lock is released whatever the pass comes to (an error must not keep it held).
    let pass = repair(store, queue, opts).await;
    lock.release().await?;
    let (on_queue, repairs) = pass?;
    Ok(Report {
        ran: true,
        on_queue,
        repairs,
    })
}

/// The pass under the lock: how many unheld jobs the queue still holds, and the repairs.
async fn repair(
    store: &Store,
    queue: &mut Queue,
    opts: ReconcileOptions,
) -> Result<(usize, Vec<Repair>), ReconcileError> {
    // The queue first: a job pushed after this read is found queued-and-recent in the store.
    let held = queue.held_jobs().await?;
    let unheld = store.unheld_jobs(opts.stale_after, opts.grace).await?;
    let (on_queue, lost): (Vec<Unheld>, Vec<Unheld>) = unheld
        .into_iter()
        .partition(|u| held.contains(&u.job.job_id) && !u.reset);
    let mut repairs = Vec::new();
    for u in lost {
        if !opts.dry_run {
            if u.reset && !store.requeue_job(&u.job).await? {
                continue;
            }
            if !held.contains(&u.job.job_id) {
                queue.push(&[u.job], 0, None).await?;
            }
            store.mark_job_enqueued(u.job.job_id).await?;
        }
        repairs.push(Repair {
            job: u.job,
            reason: u.reason(),
        });
    }
    Ok((on_queue.len(), repairs))
}

/// What the active runs `active` (ids) wait for, in one line; `None` when there are none.
pub async fn waiting_for(
    store: &Store,
    active: &[i64],
    alive_within: Duration,
) -> Result<Option<String>, StoreError> {
    if active.is_empty() {
        return Ok(None);
    }
    let active_n = active.len();
    let live = store.live_workers(alive_within).await?;
    if live.is_empty() {
        return Ok(Some(format!(
            "{active_n} run(s) wait for a worker: none is alive (start `nlebench worker` on this store and queue)"
        )));
    }
    let orphans = store
        .unheld_jobs(alive_within, Duration::ZERO)
        .await?
        .into_iter()
        .filter(|u| active.contains(&u.job.run_id) && u.holder.is_some())
        .count();
    let names: Vec<&str> = live.iter().map(|w| w.name.as_str()).collect();
    let mut line = format!(
        "{active_n} run(s) in progress; live workers: {}",
        names.join(", ")
    );
    if orphans > 0 {
        line += &format!(
            "; {orphans} job(s) held by workers that are gone wait to be delivered again (the workers' reconciler or `nlebench reconcile` sees to it)"
        );
    }
    let (mut needs, mut releases) = (Vec::new(), Vec::new());
    for r in store.runs_by_id(active).await? {
        let manifest = r.manifest()?;
        if let Some(need) = spec::memory::need_mb(&manifest) {
            needs.push((r.id, need));
        }
        releases.push((r.id, manifest.engine_version));
    }
    if let Some(note) = crate::admission::unfit_note(&needs, &live) {
        line += &format!("; {note}");
    }
    if let Some(note) = crate::admission::release_note(&releases, &live) {
        line += &format!("; {note}");
    }
    Ok(Some(line))
}
