//! The store's schema against this release's migrations. During a rolling upgrade the first
//! upgraded host migrates the store while hosts of the previous release still run: their
//! commands and workers keep working with it (migrations only add tables, columns and
//! indexes), saying that a newer release has migrated it, instead of failing on migrations
//! they do not know.

use std::collections::BTreeSet;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbErr};

/// How a store's applied migrations stand against this release's.
#[derive(Debug)]
pub(crate) struct SchemaState {
    /// This release's migrations not applied yet, oldest first.
    pub(crate) pending: Vec<String>,
    /// Migrations a newer release applied that this one does not know, by name.
    pub(crate) newer: Vec<String>,
}

impl SchemaState {
    /// Read the migrations table (created when missing, as on a fresh store).
    pub(crate) async fn read(db: &impl ConnectionTrait) -> Result<SchemaState, DbErr> {
        Migrator::install(db).await?;
        let applied: BTreeSet<String> = Migrator::get_migration_models(db)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect();
        let known: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        let pending = known
            .iter()
            .filter(|k| !applied.contains(*k))
            .cloned()
            .collect();
        let known: BTreeSet<String> = known.into_iter().collect();
        let newer = applied.difference(&known).cloned().collect();
        Ok(SchemaState { pending, newer })
    }

    /// Warn when a newer release has migrated the store at `url`.
    pub(crate) fn warn_if_newer(&self, url: &str) {
        if !self.newer.is_empty() {
            tracing::warn!(
                "the store at {url} was migrated by a newer release of nlebench ({} migration(s) this release does not know: {}); this release keeps working with it, since migrations only add tables, columns and indexes\n  fix: upgrade nlebench on this host when you can",
                self.newer.len(),
                self.newer.join(", ")
            );
        }
    }
}

/// What [`crate::Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Migrations applied now.
    pub applied: usize,
    /// Migrations of a newer release found applied (the store is ahead of this release).
    pub newer: Vec<String>,
}
