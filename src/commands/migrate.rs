//! `nlebench migrate [--wait S]`: create or upgrade the store's tables, waiting for a
//! database that is still starting.

use std::process::ExitCode;
use std::time::Duration;

use store::{Store, outage};

use crate::args::{Global, MigrateArgs};
use crate::context;

pub async fn migrate(g: &Global, a: MigrateArgs) -> anyhow::Result<ExitCode> {
    let s = context::settings(g)?;
    let store = outage::retry(Duration::from_secs(a.wait), "connecting", || {
        Store::connect(&s.database_url)
    })
    .await?;
    let m = store.migrate().await?;
    if m.newer.is_empty() {
        outln!(
            "{}: {} migration(s) applied; the schema is up to date",
            store.url(),
            m.applied
        );
    } else {
        outln!(
            "{}: 0 migration(s) applied; the store is ahead of this release ({} migration(s) of a newer release) and this release works with it",
            store.url(),
            m.newer.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
