//! The log tail of a run: a tracing layer keeps the last lines logged inside each job's span
//! (`job{run=…}`) so that a failed run stores them with its error, and the dashboard shows
//! what happened before the failure.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Lines kept per run.
const LINES: usize = 40;
/// Runs kept at once (the oldest buffers are dropped beyond).
const RUNS: usize = 256;

fn buffers() -> &'static Mutex<HashMap<i64, VecDeque<String>>> {
    static B: OnceLock<Mutex<HashMap<i64, VecDeque<String>>>> = OnceLock::new();
    B.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The run a span belongs to.
struct RunOf(i64);

/// Collects the `run` field of a span, or the message and fields of an event.
#[derive(Default)]
struct Fields {
    run: Option<i64>,
    text: String,
}

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "run" {
            self.run = Some(value);
        }
        self.record_debug(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "run" {
            self.run = i64::try_from(value).ok();
        }
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

/// The tracing layer; add it to the subscriber of processes that run jobs.
pub struct RunLogLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for RunLogLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(run), Some(span)) = (f.run, ctx.span(id)) {
            span.extensions_mut().insert(RunOf(run));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(run) = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|s| s.extensions().get::<RunOf>().map(|r| r.0))
        }) else {
            return;
        };
        let mut f = Fields::default();
        event.record(&mut f);
        let line = format!(
            "{} {:>5} {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"),
            event.metadata().level(),
            f.text
        );
        let mut b = buffers()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !b.contains_key(&run) && b.len() >= RUNS {
            b.clear();
        }
        let lines = b.entry(run).or_default();
        if lines.len() == LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// The last lines logged for a run, oldest first.
pub fn tail(run: i64) -> Vec<String> {
    buffers()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&run)
        .map(|l| l.iter().cloned().collect())
        .unwrap_or_default()
}

/// Forget a run's lines (its job is over).
pub fn forget(run: i64) {
    buffers()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&run);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn lines_logged_in_a_runs_span_are_kept_for_it() {
        let subscriber = tracing_subscriber::registry().with(RunLogLayer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job = 3u64, run = 42i64);
            let _g = span.enter();
            tracing::warn!(attempts = 2, "job failed, retrying: disk full");
            drop(_g);
            tracing::info!("outside any run");
        });
        let t = tail(42);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(
            t[0].contains("WARN")
                && t[0].contains("job failed, retrying: disk full")
                && t[0].contains("attempts=2"),
            "{t:?}"
        );
        forget(42);
        assert!(tail(42).is_empty());
    }
}
