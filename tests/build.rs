//! Marks the end-to-end tests that need PostgreSQL and Redis, the authors' released outputs,
//! NLTK's Punkt model, containers, MLflow, lm-eval or tmpfs mounts as ignored where those are absent (see
//! `test_support::build`). This package is the test suite's alone: nothing shipped builds it.

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    test_support::build::emit_test_cfgs(&repo, true);
    test_support::build::emit_punkt_cfg();
}
