//! What a number was measured on, so that a verdict, a rank or a comparison can say whether two
//! numbers are alike:
//!
//! - `runs.dataset_rows`: the examples the run's dataset holds (from the manifest; filled for
//!   the runs already stored), so that a run of fewer examples is known as partial;
//! - `runs.examples_id`: the identity of the examples the run measured, from their inputs
//!   (`spec::examples`), written when a run finishes or is imported;
//! - `baselines.n` and `baselines.examples`: the number and identity of the examples a
//!   baseline was computed on;
//! - `leaderboard_latest` ranks like with like: per (metric, task, setting, examples, model,
//!   adapter) the newest finished run with trained weights on its whole dataset. It is rebuilt
//!   from the stored rows, with triggers of the same shape as migration 11's.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &str = "
ALTER TABLE runs ADD COLUMN dataset_rows BIGINT;
ALTER TABLE runs ADD COLUMN examples_id VARCHAR;
ALTER TABLE baselines ADD COLUMN n BIGINT;
ALTER TABLE baselines ADD COLUMN examples VARCHAR;
";

/// Whether run `r` may stand on the leaderboard by default.
fn eligible(r: &str) -> String {
    format!(
        "{r}.status = 'done' AND NOT {r}.random_weights \
         AND ({r}.dataset_rows IS NULL OR {r}.n_expected >= {r}.dataset_rows)"
    )
}

const TABLE: &str = "
DROP TABLE leaderboard_latest;
CREATE TABLE leaderboard_latest (
  name VARCHAR NOT NULL,
  task_name VARCHAR NOT NULL,
  setting_name VARCHAR NOT NULL,
  examples_key VARCHAR NOT NULL,
  model_name VARCHAR NOT NULL,
  adapter_key VARCHAR NOT NULL,
  run_id BIGINT,
  PRIMARY KEY (name, task_name, setting_name, examples_key, model_name, adapter_key)
);
CREATE INDEX ix_leaderboard_latest_run ON leaderboard_latest (run_id);
";

fn fill() -> String {
    format!(
        "
INSERT INTO leaderboard_latest (name, task_name, setting_name, examples_key, model_name, adapter_key, run_id)
  SELECT m.name, r.task_name, r.setting_name, COALESCE(r.examples_id, ''), r.model_name,
         COALESCE(r.adapter_name, ''), MAX(r.id)
  FROM metrics m JOIN runs r ON r.id = m.run_id WHERE {}
  GROUP BY m.name, r.task_name, r.setting_name, COALESCE(r.examples_id, ''), r.model_name,
           COALESCE(r.adapter_name, '');",
        eligible("r")
    )
}

/// Keep the larger run id of a leaderboard row on conflict.
const NEWEST: &str =
    "ON CONFLICT (name, task_name, setting_name, examples_key, model_name, adapter_key)
  DO UPDATE SET run_id = CASE WHEN leaderboard_latest.run_id > excluded.run_id
    THEN leaderboard_latest.run_id ELSE excluded.run_id END;";

/// Leaderboard rows matching `condition` are recomputed from the eligible runs that have the
/// metric (rows left without one are removed).
fn recompute(condition: &str) -> String {
    format!(
        "
UPDATE leaderboard_latest SET run_id = (SELECT MAX(r.id) FROM runs r JOIN metrics m ON m.run_id = r.id
    WHERE m.name = leaderboard_latest.name AND {}
      AND r.task_name = leaderboard_latest.task_name
      AND r.setting_name = leaderboard_latest.setting_name
      AND COALESCE(r.examples_id, '') = leaderboard_latest.examples_key
      AND r.model_name = leaderboard_latest.model_name
      AND COALESCE(r.adapter_name, '') = leaderboard_latest.adapter_key)
  WHERE {condition};
DELETE FROM leaderboard_latest WHERE run_id IS NULL;",
        eligible("r")
    )
}

/// A metric `NEW` of an eligible run.
fn metric_add() -> String {
    format!(
        "
INSERT INTO leaderboard_latest (name, task_name, setting_name, examples_key, model_name, adapter_key, run_id)
  SELECT NEW.name, r.task_name, r.setting_name, COALESCE(r.examples_id, ''), r.model_name,
         COALESCE(r.adapter_name, ''), r.id
  FROM runs r WHERE r.id = NEW.run_id AND {}
  {NEWEST}",
        eligible("r")
    )
}

/// Run `NEW`, finished or with new examples, stands for its metrics (when eligible); the rows
/// it stood for before are recomputed first (its examples may have changed their key).
fn run_done() -> String {
    format!(
        "
{}
INSERT INTO leaderboard_latest (name, task_name, setting_name, examples_key, model_name, adapter_key, run_id)
  SELECT m.name, NEW.task_name, NEW.setting_name, COALESCE(NEW.examples_id, ''), NEW.model_name,
         COALESCE(NEW.adapter_name, ''), NEW.id
  FROM metrics m WHERE m.run_id = NEW.id AND {}
  {NEWEST}",
        recompute("run_id = NEW.id"),
        eligible("NEW")
    )
}

fn postgres() -> String {
    format!(
        "
CREATE OR REPLACE FUNCTION nlebench_run_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IS DISTINCT FROM NEW.status THEN
    {sub_old}
    {run_add}
    IF NEW.status = 'done' THEN {run_done}
    ELSIF OLD.status = 'done' THEN {undone}
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION nlebench_run_examples() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {run_done}
  RETURN NULL;
END $$;
CREATE TRIGGER runs_examples AFTER UPDATE OF examples_id ON runs FOR EACH ROW
  WHEN (NEW.status = 'done' AND OLD.examples_id IS DISTINCT FROM NEW.examples_id)
  EXECUTE FUNCTION nlebench_run_examples();

CREATE OR REPLACE FUNCTION nlebench_metric_leaderboard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {metric_add}
  ELSE {metric_drop}
  END IF;
  RETURN NULL;
END $$;
",
        sub_old = RUN_SUB_OLD,
        run_add = RUN_ADD,
        run_done = run_done(),
        undone = recompute("run_id = NEW.id"),
        metric_add = metric_add(),
        metric_drop = recompute("name = OLD.name AND run_id = OLD.run_id"),
    )
}

fn sqlite() -> String {
    format!(
        "
DROP TRIGGER runs_status_done;
DROP TRIGGER runs_status_undone;
DROP TRIGGER metrics_leaderboard_insert;
DROP TRIGGER metrics_leaderboard_delete;
CREATE TRIGGER runs_status_done AFTER UPDATE OF status ON runs
  WHEN NEW.status = 'done' AND OLD.status IS NOT 'done' BEGIN {run_done} END;
CREATE TRIGGER runs_examples AFTER UPDATE OF examples_id ON runs
  WHEN NEW.status = 'done' AND OLD.examples_id IS NOT NEW.examples_id BEGIN {run_done} END;
CREATE TRIGGER runs_status_undone AFTER UPDATE OF status ON runs
  WHEN OLD.status = 'done' AND NEW.status IS NOT 'done' BEGIN {undone} END;
CREATE TRIGGER metrics_leaderboard_insert AFTER INSERT ON metrics BEGIN {metric_add} END;
CREATE TRIGGER metrics_leaderboard_delete AFTER DELETE ON metrics BEGIN {metric_drop} END;
",
        run_done = run_done(),
        undone = recompute("run_id = NEW.id"),
        metric_add = metric_add(),
        metric_drop = recompute("name = OLD.name AND run_id = OLD.run_id"),
    )
}

/// Migration 11's run counts, unchanged, for the PostgreSQL function that also holds them.
const RUN_SUB_OLD: &str = "
UPDATE sweep_run_counts SET n = n - (SELECT COUNT(*) FROM sweep_cells c
    WHERE c.run_id = NEW.id AND c.sweep_id = sweep_run_counts.sweep_id)
  WHERE status = OLD.status AND sweep_id IN (SELECT c.sweep_id FROM sweep_cells c WHERE c.run_id = NEW.id);";

const RUN_ADD: &str = "
INSERT INTO sweep_run_counts (sweep_id, status, n)
  SELECT c.sweep_id, NEW.status, COUNT(*) FROM sweep_cells c WHERE c.run_id = NEW.id GROUP BY c.sweep_id
  ON CONFLICT (sweep_id, status) DO UPDATE SET n = sweep_run_counts.n + excluded.n;";

/// Fill `runs.dataset_rows` from each stored manifest (`dataset.rows`), a batch at a time.
async fn backfill_dataset_rows(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut after = 0i64;
    loop {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                match backend {
                    DatabaseBackend::Postgres => {
                        "SELECT id, manifest FROM runs WHERE id > $1 ORDER BY id LIMIT 500"
                    }
                    _ => "SELECT id, manifest FROM runs WHERE id > ? ORDER BY id LIMIT 500",
                },
                [after.into()],
            ))
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("", "id")?;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let manifest: String = row.try_get("", "manifest")?;
            let Some(n) = serde_json::from_str::<serde_json::Value>(&manifest)
                .ok()
                .and_then(|m| m["dataset"]["rows"].as_i64())
            else {
                continue;
            };
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                match backend {
                    DatabaseBackend::Postgres => "UPDATE runs SET dataset_rows = $1 WHERE id = $2",
                    _ => "UPDATE runs SET dataset_rows = ? WHERE id = ?",
                },
                [n.into(), id.into()],
            ))
            .await?;
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let triggers = match m.get_database_backend() {
            DatabaseBackend::Postgres => postgres(),
            DatabaseBackend::Sqlite => sqlite(),
            other => {
                return Err(DbErr::Migration(format!(
                    "the store supports PostgreSQL and SQLite, not {other:?}"
                )));
            }
        };
        db.execute_unprepared(COLUMNS).await?;
        backfill_dataset_rows(db).await?;
        db.execute_unprepared(TABLE).await?;
        db.execute_unprepared(&fill()).await?;
        db.execute_unprepared(&triggers).await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "migration 12 keeps what runs and baselines were measured on; it is not undone".into(),
        ))
    }
}
