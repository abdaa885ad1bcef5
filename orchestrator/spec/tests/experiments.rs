//! Every task, sweep and catalog file shipped in experiments/ is valid.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::path::PathBuf;

use spec::grid::expand;
use spec::{Catalog, SweepSpec, TaskRegistry};

fn experiments() -> PathBuf {
    test_support::repo().join("experiments")
}

#[test]
fn shipped_sweeps_validate_against_the_shipped_tasks_and_catalog() {
    let tasks = TaskRegistry::load_dir(&experiments().join("tasks")).unwrap();
    assert!(tasks.get("no-crows-pairs").is_some());
    let catalog = Catalog::load(&experiments().join("models/catalog.toml")).unwrap();
    assert!(catalog.get("NorGPT-369M").is_some());
    let mut n = 0;
    for entry in std::fs::read_dir(experiments().join("sweeps")).unwrap() {
        let path = entry.unwrap().path();
        let sweep = SweepSpec::load(&path, &tasks, &catalog)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !expand(&sweep).is_empty(),
            "{} has no cells",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 2);
}
