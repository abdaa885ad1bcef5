//! `nlebench status`, `cancel`, `retry` and `migrate`.

use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use orchestrator::store::Store;

use crate::args::{Global, StatusArgs, SweepArg};
use crate::context;

pub async fn status(g: &Global, a: StatusArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    match a.sweep {
        None => {
            let mut rows = Vec::new();
            for sw in store.sweeps().await? {
                let st = store.sweep_status(&sw.name).await?;
                rows.push((sw, st.counts()));
            }
            if a.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(sw, counts)| {
                        let mut o = serde_json::json!({
                            "name": sw.name, "owner": sw.owner, "updated_at": sw.updated_at,
                        });
                        for (k, n) in counts {
                            o[*k] = (*n).into();
                        }
                        o
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else if rows.is_empty() {
                outln!("no sweeps in {}", store.url());
            } else {
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                let mut header = vec!["sweep".to_string(), "updated".into()];
                header.extend(rows[0].1.iter().map(|(k, _)| k.to_string()));
                t.set_header(header);
                for (sw, counts) in rows {
                    let mut row = vec![sw.name, sw.updated_at.format("%Y-%m-%d %H:%M").to_string()];
                    row.extend(counts.iter().map(|(_, n)| n.to_string()));
                    t.add_row(row);
                }
                outln!("{t}");
            }
        }
        Some(name) => {
            let st = store.sweep_status(&name).await?;
            if a.json {
                let runs: Vec<_> = st
                    .runs
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "cell": r.cell, "run_id": r.run.id, "status": r.run.status,
                            "fingerprint": r.run.fingerprint, "samples": r.samples_done,
                            "expected": r.run.n_expected, "random_weights": r.run.random_weights,
                            "error": r.run.error,
                            "stale": metrics::is_stale(r.metric_versions()),
                            "metrics": r.metrics.iter().map(|m| (m.name.clone(), m.value)).collect::<std::collections::BTreeMap<_, _>>(),
                        })
                    })
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "sweep": st.sweep.name,
                        "counts": st.counts().iter().map(|(k, n)| (k.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                        "runs": runs,
                    }))?
                );
            } else {
                let stale = st
                    .runs
                    .iter()
                    .filter(|r| metrics::is_stale(r.metric_versions()))
                    .count();
                let counts = st
                    .counts()
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .chain((stale > 0).then(|| {
                        format!("{stale} stale (run `nlebench rescore {}`)", st.sweep.name)
                    }))
                    .collect::<Vec<_>>()
                    .join(", ");
                outln!("sweep {}: {counts}", st.sweep.name);
                let mut t = Table::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                t.set_header(["run", "cell", "status", "samples", "primary metric", "note"]);
                for r in &st.runs {
                    let primary = primary_metric(r);
                    let note = match (&r.run.error, r.run.random_weights) {
                        (Some(e), _) => e
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .chars()
                            .take(80)
                            .collect(),
                        (None, true) => "random weights".to_string(),
                        (None, false) => String::new(),
                    };
                    t.add_row([
                        r.run.id.to_string(),
                        r.cell.clone(),
                        r.run.status.to_string(),
                        format!("{}/{}", r.samples_done, r.run.n_expected),
                        primary,
                        note,
                    ]);
                }
                outln!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn primary_metric(r: &orchestrator::store::RunSummary) -> String {
    let primary = serde_json::from_str::<orchestrator::manifest::RunManifest>(&r.run.manifest)
        .map(|m| m.task.primary_metric)
        .unwrap_or_default();
    r.metrics
        .iter()
        .find(|m| m.name == primary)
        .map(|m| format!("{} = {:.2}", m.name, m.value))
        .unwrap_or_default()
}

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

pub async fn migrate(g: &Global) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = Store::connect(&s.database_url).await?;
    let n = store.migrate().await?;
    outln!(
        "{}: {n} migration(s) applied; the schema is up to date",
        store.url()
    );
    Ok(ExitCode::SUCCESS)
}
