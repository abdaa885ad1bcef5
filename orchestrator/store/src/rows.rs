//! Rows written from more than one place: a run from its manifest, a run's metric rows, and
//! the link of a sweep's cell to the run that serves it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Set, sea_query::OnConflict};

use super::entities::{metric, run, sample, sweep_cell};
use super::{MetricValue, NewSample, RunStatus, StoreError};
use spec::manifest::RunManifest;

/// A new run of `m`, created at `t`; `source` is `engine` or `import`.
pub(super) fn new_run(
    m: &RunManifest,
    fingerprint: String,
    source: &str,
    status: RunStatus,
    n_expected: u64,
    t: DateTime<Utc>,
) -> Result<run::ActiveModel, StoreError> {
    let manifest = serde_json::to_string(m).map_err(|e| StoreError::Encode(e.to_string()))?;
    let finished = status.is_terminal().then_some(t);
    Ok(run::ActiveModel {
        fingerprint: Set(fingerprint),
        model_name: Set(m.model.name.clone()),
        model_source: Set(m.model.source.to_string()),
        model_revision: Set(m.model.resolved.revision.clone()),
        adapter_name: Set(m.adapter.as_ref().map(|a| a.name.clone())),
        adapter_source: Set(m.adapter.as_ref().map(|a| a.source.to_string())),
        task_name: Set(m.task.name.clone()),
        task_version: Set(m.task.version as i32),
        setting_name: Set(m.setting.name.clone()),
        seed: Set(m.seed as i64),
        sample_limit: Set(m.setting.limit.map(|l| l as i64)),
        manifest: Set(manifest),
        source: Set(source.into()),
        status: Set(status),
        n_expected: Set(n_expected as i64),
        dataset_rows: Set(i64::try_from(m.dataset.rows).ok()),
        examples_id: Set(None),
        random_weights: Set(m.model.resolved.random_weights),
        error: Set(None),
        worker: Set(None),
        attempts: Set(0),
        created_at: Set(t),
        started_at: Set(finished),
        finished_at: Set(finished),
        ..Default::default()
    })
}

/// The identity of the examples whose (prompt, reference) are `samples`, for a task of `kind`.
pub(super) fn examples_id<'a>(
    kind: spec::TaskKind,
    samples: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let hashes: Vec<String> = samples
        .map(|(p, r)| spec::examples::example_hash(kind, p, r))
        .collect();
    spec::examples::identity(hashes.iter().map(String::as_str))
}

/// The metric rows of run `run_id`, created at `t`.
pub(super) fn metric_rows(
    run_id: i64,
    metrics: &[MetricValue],
    t: DateTime<Utc>,
) -> impl Iterator<Item = metric::ActiveModel> + '_ {
    metrics.iter().map(move |m| metric::ActiveModel {
        run_id: Set(run_id),
        name: Set(m.name.clone()),
        value: Set(m.value),
        ci_low: Set(m.ci_low),
        ci_high: Set(m.ci_high),
        n: Set(m.n),
        version: Set(m.version),
        created_at: Set(t),
        ..Default::default()
    })
}

/// The sample rows of run `run_id` computed by `worker`, created at `t`.
pub(super) fn sample_rows<'a>(
    run_id: i64,
    worker: &'a str,
    samples: &'a [NewSample],
    t: DateTime<Utc>,
) -> impl Iterator<Item = sample::ActiveModel> + 'a {
    samples.iter().map(move |s| sample::ActiveModel {
        run_id: Set(run_id),
        idx: Set(s.idx),
        shard: Set(s.shard),
        prompt: Set(storable(&s.prompt)),
        output: Set(s.output.as_deref().map(storable)),
        reference: Set(s.reference.as_deref().map(storable)),
        data: Set(s.data.to_string()),
        worker: Set(Some(worker.to_string())),
        created_at: Set(t),
        ..Default::default()
    })
}

/// Text as both backends store it: PostgreSQL text cannot hold NUL characters (a random or
/// byte-level model can generate them), so each becomes U+FFFD. JSON columns need nothing:
/// their NULs are escaped.
pub(super) fn storable(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.to_string()
    }
}

/// Point a sweep's cell at `run_id` (insert, or replace the run it pointed at).
pub(super) async fn link_cell<C: ConnectionTrait>(
    db: &C,
    sweep_id: i64,
    cell_key: &str,
    run_id: i64,
) -> Result<(), StoreError> {
    sweep_cell::Entity::insert(sweep_cell::ActiveModel {
        sweep_id: Set(sweep_id),
        cell_key: Set(cell_key.to_string()),
        run_id: Set(run_id),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([sweep_cell::Column::SweepId, sweep_cell::Column::CellKey])
            .update_column(sweep_cell::Column::RunId)
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_characters_become_replacement_characters() {
        assert_eq!(super::storable("a\0b"), "a\u{FFFD}b");
        assert_eq!(super::storable("æøå"), "æøå");
    }
}
