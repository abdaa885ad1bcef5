//! Helpers shared by the tests of every crate: where the repository, its fixtures and the
//! authors' released outputs are, and (feature `engine`) loading fixture models and comparing
//! tensors. Tests fail loudly, so these helpers panic with the path or step that failed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the message

use std::path::{Path, PathBuf};

pub mod build;
pub mod fuzz;
pub mod http;
#[cfg(feature = "engine")]
pub mod models;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/NAME` (models, adapters and reference values made by `tools/`).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `../shared/data/norglm-results/SUB` (the authors' released outputs). Tests that read them
/// are marked ignored where they are absent (`cfg(nlebench_shared)`); run anyway, they fail here.
pub fn released(sub: &str) -> PathBuf {
    let dir = repo().join("../shared/data/norglm-results").join(sub);
    assert!(
        dir.exists(),
        "{} is missing: this test needs the authors' released outputs (they exist next to the project in CI)",
        dir.display()
    );
    dir
}
