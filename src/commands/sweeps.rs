//! `nlebench sweeps archive|restore NAME`: hide a sweep from the lists, keeping its runs, or
//! list it again.

use std::process::ExitCode;

use crate::args::Global;
use crate::context;

/// `nlebench sweeps archive|restore NAME`.
pub async fn shelve(g: &Global, name: &str, archive: bool) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = context::store_migrated(&s).await?;
    let changed = store.set_archived(name, archive).await?;
    let said = match (archive, changed) {
        (true, true) => {
            "archived: hidden from the lists, every run kept; `nlebench sweeps restore` shows it again"
        }
        (true, false) => "already archived",
        (false, true) => "restored: listed again",
        (false, false) => "not archived; nothing to restore",
    };
    outln!("sweep {name}: {said}");
    Ok(ExitCode::SUCCESS)
}
