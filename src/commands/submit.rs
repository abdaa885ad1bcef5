//! `nlebench submit`: plan a sweep, store its new cells and put their jobs on the queue.

use std::process::ExitCode;

use orchestrator::submit::{GridCounts, PlannedCell, dry_run, manifests, summarize, unresolved};
use spec::SweepSpec;
use store::CellAction;

use crate::args::{Global, SubmitArgs};
use crate::context;

pub async fn submit(g: &Global, a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let sweep = context::sweep(&s, &a.sweep)?;
    let mut resolver = context::resolver(&s);
    if a.dry_run {
        // A dry run writes nothing, the model and dataset caches included.
        resolver.download = false;
        print_grid(&sweep, &GridCounts::of(&sweep));
        let missing = unresolved(&sweep, &resolver);
        if !missing.is_empty() {
            outln!(
                "{} source(s) do not resolve here, so revisions, example counts and what is already stored are not shown:",
                missing.len()
            );
            for u in &missing {
                outln!("  unresolved: {}: {}", u.what, u.problem);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let cells = manifests(&sweep, &resolver)?;
        let cells = dry_run(&s.database_url, &sweep, cells, a.force).await?;
        print_plan(&sweep, &cells, true);
        return Ok(ExitCode::SUCCESS);
    }
    context::writable_data_dir(&s)?;
    let cells = manifests(&sweep, &resolver)?;
    let store = context::store_migrated(&s).await?;
    let mut queue = context::queue(&s).await?;
    let done = orchestrator::submit::submit(&store, &mut queue, sweep, cells, a.force).await?;
    print_plan(&done.sweep, &done.cells, false);
    outln!("{} job(s) queued on {}", done.enqueued, s.queue.name);
    Ok(ExitCode::SUCCESS)
}

/// Print the grid: cells per model, task and adapter, and the total.
pub fn print_grid(sweep: &SweepSpec, g: &GridCounts) {
    outln!("sweep {}: grid of {} cell(s)", sweep.name, g.total());
    let mut t = crate::render::table(&["per", "name", "cells"], &[2]);
    for (title, counts) in [
        ("model", &g.by_model),
        ("task", &g.by_task),
        ("adapter", &g.by_adapter),
    ] {
        for (name, n) in counts {
            t.add_row(vec![title.to_string(), name.clone(), n.to_string()]);
        }
    }
    t.add_row(vec![
        "total".to_string(),
        String::new(),
        g.total().to_string(),
    ]);
    outln!("{t}");
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
    let mut t = crate::render::table(&["plan", "fingerprint", "cell", "examples", ""], &[3]);
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
            "random weights"
        } else {
            ""
        };
        t.add_row(vec![
            action,
            c.fingerprint[..12].to_string(),
            c.key.to_string(),
            c.manifest.n_expected.to_string(),
            random.to_string(),
        ]);
    }
    if !cells.is_empty() {
        outln!("{t}");
    }
}
