//! `nlebench submit`: plan a sweep, store its new cells and put their jobs on the queue.

use std::process::ExitCode;

use orchestrator::config::Settings;
use orchestrator::queue::Queue;
use orchestrator::spec::SweepSpec;
use orchestrator::store::{CellAction, Store};
use orchestrator::submit::{CellManifest, PlannedCell, manifests, plan, summarize};

use crate::args::{Global, SubmitArgs};
use crate::context;

/// What a submission did.
pub struct Submitted {
    /// The sweep.
    pub sweep: SweepSpec,
    /// Its cells with their actions.
    pub cells: Vec<PlannedCell>,
    /// Jobs put on the queue.
    pub enqueued: usize,
}

pub async fn submit(g: &Global, a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let sweep = context::sweep(&s, &a.sweep)?;
    let cells = manifests(&sweep, &context::resolver(&s))?;
    if a.dry_run {
        let cells = dry_run(&s, &sweep, cells, a.force).await?;
        print_plan(&sweep, &cells, true);
        return Ok(ExitCode::SUCCESS);
    }
    let store = context::store_migrated(&s).await?;
    let mut queue = context::queue(&s).await?;
    let done = submit_sweep(&store, &mut queue, sweep, cells, a.force).await?;
    print_plan(&done.sweep, &done.cells, false);
    outln!("{} job(s) queued on {}", done.enqueued, s.queue.name);
    Ok(ExitCode::SUCCESS)
}

/// The plan against the stored runs, without writing anything (a store that does not exist
/// yet, or has no tables yet, means every cell is new).
async fn dry_run(
    s: &Settings,
    sweep: &SweepSpec,
    cells: Vec<CellManifest>,
    force: bool,
) -> anyhow::Result<Vec<PlannedCell>> {
    let missing_sqlite = s
        .database_url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .is_some_and(|p| !std::path::Path::new(p).exists());
    if !missing_sqlite {
        let store = Store::connect(&s.database_url).await?;
        if store.require_migrated().await.is_ok() {
            return Ok(plan(sweep, cells, &store, force).await?.1);
        }
    }
    Ok(cells
        .into_iter()
        .map(|(key, manifest, fingerprint)| PlannedCell {
            key,
            manifest,
            fingerprint,
            action: CellAction::New,
        })
        .collect())
}

/// Plan, store and enqueue a sweep whose cells were resolved with [`manifests`]. Callers
/// resolve the cells, then reach the store and the queue, before anything is written; the
/// jobs' `enqueued_at` is set only once the queue accepted them, and a later submission
/// pushes again any job that never reached the queue.
pub async fn submit_sweep(
    store: &Store,
    queue: &mut Queue,
    sweep: SweepSpec,
    cells: Vec<CellManifest>,
    force: bool,
) -> anyhow::Result<Submitted> {
    let (row, cells) = plan(&sweep, cells, store, force).await?;
    let (_, jobs) = store.apply(&row, &cells).await?;
    queue.push(&jobs, sweep.priority, None).await?;
    store.mark_enqueued(&jobs).await?;
    Ok(Submitted {
        sweep,
        cells,
        enqueued: jobs.len(),
    })
}

/// Print the plan: counts, then one line per cell.
pub fn print_plan(sweep: &SweepSpec, cells: &[PlannedCell], dry_run: bool) {
    let head = if dry_run {
        "plan (dry run, nothing written)"
    } else {
        "submitted"
    };
    let counts = summarize(cells)
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    outln!(
        "sweep {}: {head}: {} cell(s): {counts}",
        sweep.name,
        cells.len()
    );
    for c in cells {
        let action = match &c.action {
            CellAction::New => "new".to_string(),
            CellAction::Done { run_id } => format!("already done (run {run_id})"),
            CellAction::Retry { run_id, was } => format!("{was} → retried (run {run_id})"),
            CellAction::InProgress { run_id } => format!("in progress (run {run_id})"),
            CellAction::Forced { previous_run_id } => {
                format!("forced (replaces run {previous_run_id})")
            }
        };
        let random = if c.manifest.model.resolved.random_weights {
            "  [random weights]"
        } else {
            ""
        };
        outln!(
            "  {:<28} {}  {}  {} example(s){random}",
            action,
            &c.fingerprint[..12],
            c.key,
            c.manifest.n_expected
        );
    }
}
