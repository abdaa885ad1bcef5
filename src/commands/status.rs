//! `nlebench status [SWEEP]`: the sweeps with their runs per status, or one sweep's runs with
//! progress, primary metric, errors, tags and notes.

use std::collections::BTreeMap;
use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use store::annotations::Target;
use store::dashboard::{Shelf, SweepSort, Window};
use store::{RunStatus, RunSummary, Store};

use crate::args::{Global, StatusArgs};
use crate::context;

pub async fn status(g: &Global, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    match a.sweep {
        None => list_sweeps(&store, a.json, a.archived).await?,
        Some(name) => show_sweep(&store, &name, a.json, context::alive_within(&s)).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Every sweep with its runs per status (one grouped query for all sweeps).
async fn list_sweeps(store: &Store, json: bool, archived: bool) -> anyhow::Result<()> {
    let all = Window {
        offset: 0,
        limit: i64::MAX as u64,
    };
    let (sweeps, _) = store
        .sweep_overviews(
            if archived {
                Shelf::Archived
            } else {
                Shelf::Active
            },
            None,
            SweepSort::Updated,
            true,
            all,
            metrics::is_stale_metric,
        )
        .await?;
    if json {
        let v: Vec<_> = sweeps
            .iter()
            .map(|o| {
                let mut v = serde_json::json!({
                    "name": o.sweep.name, "owner": o.sweep.owner, "updated_at": o.sweep.updated_at,
                });
                for status in RunStatus::ALL {
                    v[status.as_str()] = o.count(status).into();
                }
                v
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else if sweeps.is_empty() {
        match archived {
            true => outln!("no archived sweeps in {}", store.url()),
            false => outln!("no sweeps in {}", store.url()),
        }
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec!["sweep".to_string(), "updated".into()];
        header.extend(RunStatus::ALL.iter().map(|s| s.to_string()));
        t.set_header(header);
        for o in sweeps {
            let mut row = vec![
                o.sweep.name.clone(),
                o.sweep.updated_at.format("%Y-%m-%d %H:%M").to_string(),
            ];
            row.extend(RunStatus::ALL.iter().map(|s| o.count(*s).to_string()));
            t.add_row(row);
        }
        outln!("{t}");
    }
    Ok(())
}

/// One sweep's runs with progress, primary metric and errors.
async fn show_sweep(
    store: &Store,
    name: &str,
    json: bool,
    alive_within: std::time::Duration,
) -> anyhow::Result<()> {
    let st = store.sweep_status(name).await?;
    let active: Vec<i64> = st
        .runs
        .iter()
        .filter(|r| r.run.status.is_active())
        .map(|r| r.run.id)
        .collect();
    let waiting = orchestrator::reconcile::waiting_for(store, &active, alive_within).await?;
    let said = store.annotations(&Target::Sweep(name.to_string())).await?;
    let ids: Vec<i64> = st.runs.iter().map(|r| r.run.id).collect();
    let run_tags = store.run_tags(&ids).await?;
    if json {
        let runs: Vec<_> = st
            .runs
            .iter()
            .map(|r| {
                let mut v = run_json(r);
                v["tags"] = serde_json::json!(run_tags.get(&r.run.id).cloned().unwrap_or_default());
                v
            })
            .collect();
        let counts: BTreeMap<String, usize> = st
            .counts()
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        let v = serde_json::json!({
            "sweep": st.sweep.name, "counts": counts, "runs": runs, "waiting": waiting,
            "variants": crate::render::variants(&st.runs),
            "tags": said.tags, "notes": said.notes,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let stale = st
        .runs
        .iter()
        .filter(|r| metrics::is_stale(r.metric_versions()))
        .count();
    let counts = st
        .counts()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .chain(
            (stale > 0)
                .then(|| format!("{stale} stale (run `nlebench rescore {}`)", st.sweep.name)),
        )
        .collect::<Vec<_>>()
        .join(", ");
    outln!("sweep {}: {counts}", st.sweep.name);
    if !said.tags.is_empty() {
        outln!("tags: {}", said.tags.join(" "));
    }
    for n in &said.notes {
        let by = n.author.as_deref().unwrap_or("someone");
        outln!("note ({by}, {}): {}", n.at.format("%Y-%m-%d %H:%M"), n.text);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["run", "cell", "status", "samples", "primary metric", "note"]);
    for r in &st.runs {
        t.add_row([
            r.run.id.to_string(),
            r.cell.clone(),
            r.run.status.to_string(),
            format!("{}/{}", r.samples_done, r.run.n_expected),
            primary_metric(r),
            note(r),
        ]);
    }
    outln!("{t}");
    if let Some(t) = crate::render::variants_table(&st.runs) {
        outln!("{t}");
    }
    if let Some(w) = waiting {
        outln!("{w}");
    }
    Ok(())
}

fn run_json(r: &RunSummary) -> serde_json::Value {
    let metrics: BTreeMap<&str, f64> = r
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m.value))
        .collect();
    serde_json::json!({
        "cell": r.cell, "run_id": r.run.id, "status": r.run.status,
        "fingerprint": r.run.fingerprint, "samples": r.samples_done,
        "expected": r.run.n_expected, "random_weights": r.run.random_weights,
        "error": r.run.error,
        "notes": r.run.notes.as_deref().map(|n| n.lines().collect::<Vec<_>>()).unwrap_or_default(),
        "stale": metrics::is_stale(r.metric_versions()),
        "metrics": metrics,
    })
}

/// The first line of a run's error (80 characters), else how many metrics it left out, or
/// that its weights are random.
fn note(r: &RunSummary) -> String {
    let missing = r.run.notes.as_deref().map_or(0, |n| n.lines().count());
    if r.run.error.is_none() && missing > 0 {
        let random = if r.run.random_weights {
            "random weights; "
        } else {
            ""
        };
        return format!("{random}{missing} metric note(s): `status --json` or the run page");
    }
    match (&r.run.error, r.run.random_weights) {
        (Some(e), _) => e
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect(),
        (None, true) => "random weights".to_string(),
        (None, false) => String::new(),
    }
}

fn primary_metric(r: &RunSummary) -> String {
    let primary = r
        .run
        .manifest()
        .map(|m| m.task.primary_metric)
        .unwrap_or_default();
    r.metrics
        .iter()
        .find(|m| m.name == primary)
        .map(|m| format!("{} = {}", m.name, metrics::format_value(&m.name, m.value)))
        .unwrap_or_default()
}
