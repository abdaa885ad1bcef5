//! Aggregates the dashboard reads instead of scanning the history, kept true by triggers so
//! that every writer (workers, planner, importer, orphan sweeper, a DBA's hand) keeps them:
//!
//! - `sweep_run_counts`: runs per (sweep, status), for the sweeps list;
//! - `leaderboard_latest`: per (metric, task, model, adapter) the newest finished run that has
//!   the metric, for the leaderboard (`adapter_key` is the adapter's name, `''` for none).
//!
//! Both are filled from the rows already stored, so an upgraded store shows the same pages.
//! The statements inside the triggers are the same SQL on PostgreSQL and SQLite; only the
//! trigger wrappers differ. Runs never change task, model or adapter, and metrics never move
//! to another run or name (rescoring deletes and inserts), so no trigger watches those.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &str = "
CREATE TABLE sweep_run_counts (
  sweep_id BIGINT NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
  status VARCHAR NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (sweep_id, status)
);
CREATE TABLE leaderboard_latest (
  name VARCHAR NOT NULL,
  task_name VARCHAR NOT NULL,
  model_name VARCHAR NOT NULL,
  adapter_key VARCHAR NOT NULL,
  run_id BIGINT,
  PRIMARY KEY (name, task_name, model_name, adapter_key)
);
CREATE INDEX ix_leaderboard_latest_run ON leaderboard_latest (run_id);
INSERT INTO sweep_run_counts (sweep_id, status, n)
  SELECT c.sweep_id, r.status, COUNT(*) FROM sweep_cells c JOIN runs r ON r.id = c.run_id
  GROUP BY c.sweep_id, r.status;
INSERT INTO leaderboard_latest (name, task_name, model_name, adapter_key, run_id)
  SELECT m.name, r.task_name, r.model_name, COALESCE(r.adapter_name, ''), MAX(r.id)
  FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.status = 'done'
  GROUP BY m.name, r.task_name, r.model_name, COALESCE(r.adapter_name, '');
";

/// A cell `NEW` counts its run under the run's status.
const CELL_ADD: &str = "
INSERT INTO sweep_run_counts (sweep_id, status, n)
  SELECT NEW.sweep_id, r.status, 1 FROM runs r WHERE r.id = NEW.run_id
  ON CONFLICT (sweep_id, status) DO UPDATE SET n = sweep_run_counts.n + excluded.n;";

/// A cell `OLD` no longer counts its run (nothing when the run itself is gone: the run's
/// delete trigger counted it out).
const CELL_SUB: &str = "
UPDATE sweep_run_counts SET n = n - 1
  WHERE sweep_id = OLD.sweep_id AND status = (SELECT r.status FROM runs r WHERE r.id = OLD.run_id);";

/// Run `R`'s cells leave status `S`.
fn run_sub(r: &str, s: &str) -> String {
    format!(
        "
UPDATE sweep_run_counts SET n = n - (SELECT COUNT(*) FROM sweep_cells c
    WHERE c.run_id = {r}.id AND c.sweep_id = sweep_run_counts.sweep_id)
  WHERE status = {s}.status AND sweep_id IN (SELECT c.sweep_id FROM sweep_cells c WHERE c.run_id = {r}.id);"
    )
}

/// Run `NEW`'s cells enter its new status.
const RUN_ADD: &str = "
INSERT INTO sweep_run_counts (sweep_id, status, n)
  SELECT c.sweep_id, NEW.status, COUNT(*) FROM sweep_cells c WHERE c.run_id = NEW.id GROUP BY c.sweep_id
  ON CONFLICT (sweep_id, status) DO UPDATE SET n = sweep_run_counts.n + excluded.n;";

/// Keep the larger run id of a leaderboard row on conflict.
const NEWEST: &str = "ON CONFLICT (name, task_name, model_name, adapter_key) DO UPDATE SET run_id =
    CASE WHEN leaderboard_latest.run_id > excluded.run_id THEN leaderboard_latest.run_id
    ELSE excluded.run_id END;";

/// Leaderboard rows matching `WHERE` are recomputed from the finished runs that have the
/// metric (rows left without one are removed).
fn recompute(condition: &str) -> String {
    format!(
        "
UPDATE leaderboard_latest SET run_id = (SELECT MAX(r.id) FROM runs r JOIN metrics m ON m.run_id = r.id
    WHERE m.name = leaderboard_latest.name AND r.status = 'done'
      AND r.task_name = leaderboard_latest.task_name AND r.model_name = leaderboard_latest.model_name
      AND COALESCE(r.adapter_name, '') = leaderboard_latest.adapter_key)
  WHERE {condition};
DELETE FROM leaderboard_latest WHERE run_id IS NULL;"
    )
}

/// A metric `NEW` of a finished run.
fn metric_add() -> String {
    format!(
        "
INSERT INTO leaderboard_latest (name, task_name, model_name, adapter_key, run_id)
  SELECT NEW.name, r.task_name, r.model_name, COALESCE(r.adapter_name, ''), r.id
  FROM runs r WHERE r.id = NEW.run_id AND r.status = 'done'
  {NEWEST}"
    )
}

/// A run `NEW` that just finished brings its metrics.
fn run_done() -> String {
    format!(
        "
INSERT INTO leaderboard_latest (name, task_name, model_name, adapter_key, run_id)
  SELECT m.name, NEW.task_name, NEW.model_name, COALESCE(NEW.adapter_name, ''), NEW.id
  FROM metrics m WHERE m.run_id = NEW.id
  {NEWEST}"
    )
}

fn postgres() -> String {
    format!(
        "
CREATE FUNCTION nlebench_cell_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN {CELL_SUB} END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN {CELL_ADD} END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER sweep_cells_counts AFTER INSERT OR DELETE OR UPDATE OF sweep_id, run_id
  ON sweep_cells FOR EACH ROW EXECUTE FUNCTION nlebench_cell_counts();

CREATE FUNCTION nlebench_run_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IS DISTINCT FROM NEW.status THEN
    {sub_old}
    {RUN_ADD}
    IF NEW.status = 'done' THEN {run_done}
    ELSIF OLD.status = 'done' THEN {undone}
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_status AFTER UPDATE OF status ON runs
  FOR EACH ROW EXECUTE FUNCTION nlebench_run_status();

CREATE FUNCTION nlebench_run_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {sub_deleted}
  RETURN OLD;
END $$;
CREATE TRIGGER runs_delete_counts BEFORE DELETE ON runs
  FOR EACH ROW EXECUTE FUNCTION nlebench_run_delete();

CREATE FUNCTION nlebench_metric_leaderboard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {metric_add}
  ELSE {metric_drop}
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER metrics_leaderboard AFTER INSERT OR DELETE ON metrics
  FOR EACH ROW EXECUTE FUNCTION nlebench_metric_leaderboard();
",
        sub_old = run_sub("NEW", "OLD"),
        run_done = run_done(),
        undone = recompute("run_id = NEW.id"),
        sub_deleted = run_sub("OLD", "OLD"),
        metric_add = metric_add(),
        metric_drop = recompute("name = OLD.name AND run_id = OLD.run_id"),
    )
}

fn sqlite() -> String {
    format!(
        "
CREATE TRIGGER sweep_cells_counts_insert AFTER INSERT ON sweep_cells BEGIN {CELL_ADD} END;
CREATE TRIGGER sweep_cells_counts_delete AFTER DELETE ON sweep_cells BEGIN {CELL_SUB} END;
CREATE TRIGGER sweep_cells_counts_update AFTER UPDATE OF sweep_id, run_id ON sweep_cells
  BEGIN {CELL_SUB} {CELL_ADD} END;
CREATE TRIGGER runs_status AFTER UPDATE OF status ON runs WHEN OLD.status IS NOT NEW.status
  BEGIN {sub_old} {RUN_ADD} END;
CREATE TRIGGER runs_status_done AFTER UPDATE OF status ON runs
  WHEN NEW.status = 'done' AND OLD.status IS NOT 'done' BEGIN {run_done} END;
CREATE TRIGGER runs_status_undone AFTER UPDATE OF status ON runs
  WHEN OLD.status = 'done' AND NEW.status IS NOT 'done' BEGIN {undone} END;
CREATE TRIGGER runs_delete_counts BEFORE DELETE ON runs BEGIN {sub_deleted} END;
CREATE TRIGGER metrics_leaderboard_insert AFTER INSERT ON metrics BEGIN {metric_add} END;
CREATE TRIGGER metrics_leaderboard_delete AFTER DELETE ON metrics BEGIN {metric_drop} END;
",
        sub_old = run_sub("NEW", "OLD"),
        run_done = run_done(),
        undone = recompute("run_id = NEW.id"),
        sub_deleted = run_sub("OLD", "OLD"),
        metric_add = metric_add(),
        metric_drop = recompute("name = OLD.name AND run_id = OLD.run_id"),
    )
}

const DROP_POSTGRES: &str = "
DROP TRIGGER IF EXISTS sweep_cells_counts ON sweep_cells;
DROP TRIGGER IF EXISTS runs_status ON runs;
DROP TRIGGER IF EXISTS runs_delete_counts ON runs;
DROP TRIGGER IF EXISTS metrics_leaderboard ON metrics;
DROP FUNCTION IF EXISTS nlebench_cell_counts();
DROP FUNCTION IF EXISTS nlebench_run_status();
DROP FUNCTION IF EXISTS nlebench_run_delete();
DROP FUNCTION IF EXISTS nlebench_metric_leaderboard();
";

const DROP_SQLITE: &str = "
DROP TRIGGER IF EXISTS sweep_cells_counts_insert;
DROP TRIGGER IF EXISTS sweep_cells_counts_delete;
DROP TRIGGER IF EXISTS sweep_cells_counts_update;
DROP TRIGGER IF EXISTS runs_status;
DROP TRIGGER IF EXISTS runs_status_done;
DROP TRIGGER IF EXISTS runs_status_undone;
DROP TRIGGER IF EXISTS runs_delete_counts;
DROP TRIGGER IF EXISTS metrics_leaderboard_insert;
DROP TRIGGER IF EXISTS metrics_leaderboard_delete;
";

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
        db.execute_unprepared(TABLES).await?;
        db.execute_unprepared(&triggers).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let drop = match m.get_database_backend() {
            DatabaseBackend::Postgres => DROP_POSTGRES,
            _ => DROP_SQLITE,
        };
        let db = m.get_connection();
        db.execute_unprepared(drop).await?;
        db.execute_unprepared(
            "DROP TABLE IF EXISTS leaderboard_latest; DROP TABLE IF EXISTS sweep_run_counts;",
        )
        .await?;
        Ok(())
    }
}
