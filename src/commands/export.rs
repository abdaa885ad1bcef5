//! `nlebench export`: a sweep's runs and metrics as CSV or JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::{ExportArgs, Format, Global};
use crate::context;

pub async fn export(g: &Global, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
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
