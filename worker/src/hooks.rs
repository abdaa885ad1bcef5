//! Code a program embedding the worker runs at points of a job's life. The `nlebench` binary
//! installs none; the end-to-end tests' binary (`tests/bin/nlebench_test.rs`) installs one that
//! aborts the process on a chosen model's jobs, as the kernel's OOM killer would.

use std::sync::Arc;

use spec::manifest::RunManifest;

/// A function called with the manifest of each claimed job as it starts.
pub type BeforeJob = Arc<dyn Fn(&RunManifest) + Send + Sync>;

/// The hooks a worker calls; none by default.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called as each claimed job starts, before its model is loaded.
    pub before_job: Option<BeforeJob>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("before_job", &self.before_job.is_some())
            .finish()
    }
}
