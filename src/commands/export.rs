//! `nlebench export`: a sweep's runs and metrics as CSV or JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::{ExportArgs, Format, Global};
use crate::context;

pub async fn export(g: &Global, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    if let Some(to) = &a.to {
        return to_tracker(&store, &a.sweep, to, a.experiment.as_deref()).await;
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if a.samples {
        write_rows(&mut out, a.format, &store.export_samples(&a.sweep).await?)?;
    } else {
        write_rows(&mut out, a.format, &store.export_rows(&a.sweep).await?)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--to mlflow URL`: push the sweep's runs to the tracking server and say what changed.
async fn to_tracker(
    store: &orchestrator::store::Store,
    sweep: &str,
    to: &[String],
    experiment: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let [tracker, url] = to else {
        anyhow::bail!("--to takes a tracker and its URL\n  fix: --to mlflow http://HOST:PORT");
    };
    if tracker != "mlflow" {
        anyhow::bail!(
            "unknown tracker `{tracker}` in --to\n  fix: --to mlflow http://HOST:PORT (MLflow is the tracker supported)"
        );
    }
    let experiment = experiment.unwrap_or(sweep);
    let r = trackers::mlflow::export(store, sweep, url, experiment).await?;
    outln!(
        "sweep {sweep} → MLflow experiment `{experiment}` (id {}) at {}: {} run(s) created, {} updated, {} unchanged",
        r.experiment_id,
        orchestrator::store::redact(url),
        r.created,
        r.updated,
        r.unchanged
    );
    if r.no_artifacts {
        eprintln!(
            "note: the server does not proxy artifacts, so the samples were not uploaded; start it with --serve-artifacts (the default of `mlflow server`)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_rows<T: serde::Serialize>(
    out: &mut dyn Write,
    format: Format,
    rows: &[T],
) -> anyhow::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
