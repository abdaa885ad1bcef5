//! Prometheus metrics in the text exposition format: a worker's own counters
//! ([`WorkerTelemetry`], served by `nlebench worker --metrics-addr`) and the shared store's
//! state ([`store_metrics`], served on the dashboard's `/metrics`). Rates (samples/s,
//! tokens/s) are Prometheus' `rate()` of the counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use store::{Store, StoreError};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label of a failed job: `retry` (attempted again later) or `give_up` (the run failed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Label of a count by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: String,
}

/// Label naming a queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueName {
    queue: String,
}

/// Labels of a worker.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

/// What one worker process did since it started; cheap to share (`Arc`).
#[derive(Debug)]
pub struct WorkerTelemetry {
    registry: Registry,
    jobs_started: Counter,
    jobs_finished: Counter,
    jobs_failed: Family<Outcome, Counter>,
    samples: Counter,
    generated_tokens: Counter,
    model_loads: Counter,
    model_load_seconds: Counter<f64, AtomicU64>,
    heartbeat_age: Gauge<f64, AtomicU64>,
    started: Instant,
    /// Milliseconds after `started` of the last heartbeat the store took.
    last_heartbeat_ms: AtomicU64,
}

impl Default for WorkerTelemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nlebench");
        let t = WorkerTelemetry {
            jobs_started: Counter::default(),
            jobs_finished: Counter::default(),
            jobs_failed: Family::default(),
            samples: Counter::default(),
            generated_tokens: Counter::default(),
            model_loads: Counter::default(),
            model_load_seconds: Counter::default(),
            heartbeat_age: Gauge::default(),
            started: Instant::now(),
            last_heartbeat_ms: AtomicU64::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "jobs_started",
            "Jobs this worker claimed",
            t.jobs_started.clone(),
        );
        registry.register(
            "jobs_finished",
            "Jobs this worker completed",
            t.jobs_finished.clone(),
        );
        registry.register(
            "jobs_failed",
            "Failed job attempts (outcome: retry or give_up)",
            t.jobs_failed.clone(),
        );
        registry.register("samples", "Samples this worker stored", t.samples.clone());
        registry.register(
            "generated_tokens",
            "New tokens generated in the samples this worker stored",
            t.generated_tokens.clone(),
        );
        registry.register(
            "model_loads",
            "Base models loaded from disk",
            t.model_loads.clone(),
        );
        registry.register_with_unit(
            "model_load",
            "Time spent loading base models",
            Unit::Seconds,
            t.model_load_seconds.clone(),
        );
        registry.register_with_unit(
            "heartbeat_age",
            "Time since this worker's last heartbeat reached the store",
            Unit::Seconds,
            t.heartbeat_age.clone(),
        );
        WorkerTelemetry { registry, ..t }
    }
}

impl WorkerTelemetry {
    /// A job was claimed.
    pub fn job_started(&self) {
        self.jobs_started.inc();
    }

    /// A job was completed.
    pub fn job_finished(&self) {
        self.jobs_finished.inc();
    }

    /// An attempt failed; `give_up` when the run failed with it.
    pub fn job_failed(&self, give_up: bool) {
        let outcome = if give_up { "give_up" } else { "retry" };
        self.jobs_failed.get_or_create(&Outcome { outcome }).inc();
    }

    /// `samples` were stored, holding `tokens` generated tokens.
    pub fn samples_stored(&self, samples: u64, tokens: u64) {
        self.samples.inc_by(samples);
        self.generated_tokens.inc_by(tokens);
    }

    /// A base model was loaded in `seconds`.
    pub fn model_loaded(&self, seconds: f64) {
        self.model_loads.inc();
        self.model_load_seconds.inc_by(seconds);
    }

    /// The store took a heartbeat now.
    pub fn heartbeat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// The metrics in the text exposition format.
    pub fn encode(&self) -> String {
        let since = self.started.elapsed().as_millis() as u64;
        let last = self.last_heartbeat_ms.load(Ordering::Relaxed);
        self.heartbeat_age
            .set(since.saturating_sub(last) as f64 / 1000.0);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The store's state for the dashboard's `/metrics`: jobs waiting on `queue` (the store's
/// count of queued jobs), runs and jobs by state, workers by state, and the heartbeat age of
/// each running worker.
pub async fn store_metrics(store: &Store, queue: &str) -> Result<String, StoreError> {
    let totals = store.totals().await?;
    let mut registry = Registry::with_prefix("nlebench");
    let depth = Family::<QueueName, Gauge>::default();
    let queued = totals
        .jobs
        .iter()
        .find(|(s, _)| s == "queued")
        .map_or(0, |(_, n)| *n);
    depth
        .get_or_create(&QueueName {
            queue: queue.to_string(),
        })
        .set(queued);
    registry.register("queue_depth", "Jobs waiting on the queue", depth);
    for (name, help, counts) in [
        ("runs", "Runs by state", &totals.runs),
        ("jobs", "Jobs by state", &totals.jobs),
        ("workers", "Registered workers by state", &totals.workers),
    ] {
        let family = Family::<State, Gauge>::default();
        for (state, n) in counts {
            family
                .get_or_create(&State {
                    state: state.clone(),
                })
                .set(*n);
        }
        registry.register(name, help, family);
    }
    let ages = Family::<WorkerLabel, Gauge<f64, AtomicU64>>::default();
    let now = Utc::now();
    for (worker, last) in &totals.heartbeats {
        let age = (now - *last).num_milliseconds().max(0) as f64 / 1000.0;
        ages.get_or_create(&WorkerLabel {
            worker: worker.clone(),
        })
        .set(age);
    }
    registry.register_with_unit(
        "worker_heartbeat_age",
        "Time since each running worker's last heartbeat",
        Unit::Seconds,
        ages,
    );
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counters_are_exposed_with_their_types() {
        let t = WorkerTelemetry::default();
        t.job_started();
        t.job_finished();
        t.job_failed(false);
        t.samples_stored(8, 120);
        t.model_loaded(1.5);
        let text = t.encode();
        for line in [
            "# TYPE nlebench_jobs_started counter",
            "nlebench_jobs_started_total 1",
            "nlebench_jobs_failed_total{outcome=\"retry\"} 1",
            "nlebench_samples_total 8",
            "nlebench_generated_tokens_total 120",
            "nlebench_model_load_seconds_total 1.5",
            "# TYPE nlebench_heartbeat_age_seconds gauge",
        ] {
            assert!(text.contains(line), "{line} is not in\n{text}");
        }
    }
}
