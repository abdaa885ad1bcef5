//! `nlebench-test`: the `nlebench` binary of the end-to-end tests. The same commands, plus the
//! tests' fault injection: with `NLEBENCH_TEST_FAULT_ABORT_MODEL=NAME`, a worker aborts the
//! process as it starts a job of sweep model NAME, as the kernel's OOM killer would kill it
//! (`tests/faults.rs`). The shipped binary has no such switch.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let mut hooks = worker::Hooks::default();
    if let Some(model) = std::env::var("NLEBENCH_TEST_FAULT_ABORT_MODEL")
        .ok()
        .filter(|m| !m.is_empty())
    {
        hooks.before_job = Some(Arc::new(move |m| {
            if m.model.name == model {
                eprintln!("fault injection: aborting on a job of model {model}");
                std::process::abort();
            }
        }));
    }
    nlebench::main_with(hooks)
}
