//! A sweep's runs in MLflow: one MLflow run per nlebench run, in one experiment. Params are the
//! run's manifest fields (dotted paths: `model.source`, `task.template`, `setting.limit`, …),
//! metrics its metric values with `.ci_low`, `.ci_high` and `.n`, tags name the sweep, cell,
//! fingerprint, status and the run's and sweep's tags (`nlebench.tags`), and the samples are the artifact `samples.jsonl`. The tag
//! `nlebench.run` (store run id and fingerprint) finds a run exported before: exporting again
//! logs only what changed (a rescore's metrics, a status), so the export is idempotent.

mod client;

use std::collections::BTreeMap;

use serde_json::Value;
use store::{RunStatus, SampleRow, Store, StoreError};

pub use client::{Client, Credentials, Remote};

/// The tag whose value identifies the nlebench run of an MLflow run.
pub const RUN_TAG: &str = "nlebench.run";

/// MLflow's longest param value.
const MAX_PARAM_VALUE: usize = 6000;

/// What went wrong talking to MLflow, or reading the store.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error(
        "cannot reach the MLflow tracking server at {url}: {message}\n  fix: start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or correct the URL"
    )]
    Unreachable { url: String, message: String },
    #[error("the MLflow server at {url} refused {what} (HTTP {status} {code}): {message}")]
    Refused {
        url: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "the MLflow server at {url} answered {what} with what is not MLflow's API: {message}\n  fix: give the tracking server's base URL (the one `mlflow ui` opens)"
    )]
    Protocol {
        url: String,
        what: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The experiment's id.
    pub experiment_id: String,
    /// Runs new to MLflow.
    pub created: usize,
    /// Runs exported before that had something new.
    pub updated: usize,
    /// Runs exported before with nothing new.
    pub unchanged: usize,
    /// The server does not proxy artifacts: samples were not uploaded.
    pub no_artifacts: bool,
}

/// One nlebench run as MLflow will hold it.
#[derive(Debug, Clone)]
struct Export {
    key: String,
    name: String,
    status: &'static str,
    start_ms: i64,
    end_ms: Option<i64>,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    tags: BTreeMap<String, String>,
    samples: Vec<u8>,
}

/// Export sweep `sweep` of `store` to experiment `experiment` of the server at `url`.
pub async fn export(
    store: &Store,
    sweep: &str,
    url: &str,
    credentials: &Credentials,
    experiment: &str,
) -> Result<Report, MlflowError> {
    let status = store.sweep_status(sweep).await?;
    let mut samples: BTreeMap<i64, Vec<SampleRow>> = BTreeMap::new();
    for s in store.export_samples(sweep).await? {
        samples.entry(s.run_id).or_default().push(s);
    }
    let ids: Vec<i64> = status.runs.iter().map(|r| r.run.id).collect();
    let mut said = store.run_and_sweep_tags(status.sweep.id, &ids).await?;
    let mut runs = Vec::with_capacity(status.runs.len());
    for r in &status.runs {
        let manifest = serde_json::to_value(r.run.manifest()?).unwrap_or(Value::Null);
        let mut params = BTreeMap::new();
        flatten("", &manifest, &mut params);
        let mut metrics = BTreeMap::new();
        for m in &r.metrics {
            let key = metric_key(&m.name);
            metrics.insert(format!("{key}.n"), m.n as f64);
            if let Some(low) = m.ci_low {
                metrics.insert(format!("{key}.ci_low"), low);
            }
            if let Some(high) = m.ci_high {
                metrics.insert(format!("{key}.ci_high"), high);
            }
            metrics.insert(key, m.value);
        }
        let run = &r.run;
        let mut tags = BTreeMap::from([
            (
                RUN_TAG.to_string(),
                format!("{}-{}", run.id, short(&run.fingerprint)),
            ),
            ("nlebench.sweep".into(), sweep.to_string()),
            ("nlebench.cell".into(), r.cell.clone()),
            ("nlebench.fingerprint".into(), run.fingerprint.clone()),
            ("nlebench.status".into(), run.status.as_str().to_string()),
            (
                "nlebench.random_weights".into(),
                run.random_weights.to_string(),
            ),
        ]);
        let said = said.remove(&run.id).unwrap_or_default();
        if !said.is_empty() {
            tags.insert("nlebench.tags".into(), said.join(" "));
        }
        if let Some(notes) = run.notes.as_ref().filter(|n| !n.is_empty()) {
            tags.insert("mlflow.note.content".into(), notes.clone());
        }
        let mut jsonl = Vec::new();
        for s in samples.remove(&run.id).unwrap_or_default() {
            serde_json::to_writer(&mut jsonl, &s).map_err(|e| StoreError::Encode(e.to_string()))?;
            jsonl.push(b'\n');
        }
        runs.push(Export {
            key: tags[RUN_TAG].clone(),
            name: r.cell.clone(),
            status: mlflow_status(run.status),
            start_ms: run.started_at.unwrap_or(run.created_at).timestamp_millis(),
            end_ms: run.finished_at.map(|t| t.timestamp_millis()),
            params,
            metrics,
            tags,
            samples: jsonl,
        });
    }
    let (url, experiment) = (url.to_string(), experiment.to_string());
    let credentials = credentials.clone();
    let client = move || Client::new(&url, &credentials);
    match tokio::task::spawn_blocking(move || push(&client(), &experiment, &runs)).await {
        Ok(report) => report,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Create or bring up to date each run in MLflow.
fn push(client: &Client, experiment: &str, runs: &[Export]) -> Result<Report, MlflowError> {
    let experiment_id = client.experiment_id(experiment)?;
    let known = client.runs_by_tag(&experiment_id, RUN_TAG)?;
    let mut report = Report {
        experiment_id: experiment_id.clone(),
        ..Report::default()
    };
    for run in runs {
        let (remote, created) = match known.get(&run.key) {
            Some(r) => (r.clone(), false),
            None => (
                client.create_run(&experiment_id, &run.name, run.start_ms)?,
                true,
            ),
        };
        // A param cannot change once logged: only missing ones are sent.
        let params: Vec<(&String, &String)> = run
            .params
            .iter()
            .filter(|(k, _)| !remote.params.contains_key(*k))
            .collect();
        let metrics: Vec<(&String, f64)> = run
            .metrics
            .iter()
            .filter(|(k, v)| !remote.metrics.get(*k).is_some_and(|r| same(*r, **v)))
            .map(|(k, v)| (k, *v))
            .collect();
        let tags: Vec<(&String, &String)> = run
            .tags
            .iter()
            .filter(|(k, v)| remote.tags.get(*k) != Some(*v))
            .collect();
        let status_changed = remote.status != run.status;
        if !created && params.is_empty() && metrics.is_empty() && tags.is_empty() && !status_changed
        {
            report.unchanged += 1;
            continue;
        }
        let at = run.end_ms.unwrap_or(run.start_ms);
        client.log_batch(&remote.run_id, &params, &metrics, &tags, at)?;
        if !run.samples.is_empty()
            && !client.upload_artifact(&remote.artifact_uri, "samples.jsonl", &run.samples)?
        {
            report.no_artifacts = true;
        }
        if status_changed || created {
            client.update_run(&remote.run_id, run.status, run.end_ms)?;
        }
        if created {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    Ok(report)
}

/// The same value, as far as MLflow keeps it: its store may give back the last bit of a
/// double changed (0.9869865354953233 comes back as …232).
fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// MLflow's status of a run in `status`.
fn mlflow_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Done => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Cancelled => "KILLED",
        RunStatus::Queued | RunStatus::Running => "RUNNING",
    }
}

/// `value`'s leaves as dotted keys; lists as JSON; nulls left out; values cut to MLflow's
/// longest.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let text = match value {
        Value::Null => return,
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
            return;
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut: String = text.chars().take(MAX_PARAM_VALUE).collect();
    out.insert(prefix.to_string(), cut);
}

/// A metric name as an MLflow key (letters, digits, `_ - . / space`).
fn metric_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-./ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifests_flatten_to_dotted_params() {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &json!({"model": {"name": "m", "dtype": "f32"}, "seed": 3, "adapter": null,
                    "task": {"metrics": ["bleu", "rouge_l"], "template": "x".repeat(7000)}}),
            &mut out,
        );
        assert_eq!(out["model.name"], "m");
        assert_eq!(out["seed"], "3");
        assert_eq!(out["task.metrics"], r#"["bleu","rouge_l"]"#);
        assert_eq!(out["task.template"].len(), MAX_PARAM_VALUE);
        assert!(!out.contains_key("adapter"));
    }

    #[test]
    fn values_that_come_back_a_bit_off_are_the_same() {
        assert!(same(0.9869865354953233, 0.9869865354953232));
        assert!(same(0.0, 0.0) && same(-3.5, -3.5));
        assert!(!same(0.5, 0.5001) && !same(0.0, 1e-300));
    }

    #[test]
    fn metric_names_become_mlflow_keys() {
        assert_eq!(metric_key("bias_paper/race-color"), "bias_paper/race-color");
        assert_eq!(metric_key("entailment:ratio"), "entailment_ratio");
    }
}
