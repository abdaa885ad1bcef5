//! No panic from a sweep or task file: random text and mutations of the shipped files give
//! `Ok` or an error naming the file. Bounded case counts (PROPTEST_CASES overrides them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use spec::{Catalog, SweepSpec, TaskRegistry, TaskSpec};
use test_support::fuzz::{inputs, names_file};
use test_support::repo;

proptest! {
    #![proptest_config(test_support::fuzz::config())]

    #[test]
    fn sweep_files_never_panic(bytes in inputs(std::fs::read(repo().join("experiments/sweeps/quickstart.toml")).unwrap())) {
        let tasks = TaskRegistry::load_dir(&repo().join("experiments/tasks")).unwrap();
        let catalog = Catalog::load(&repo().join("experiments/models/catalog.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzzed-sweep.toml");
        std::fs::write(&path, &bytes).unwrap();
        names_file(SweepSpec::load(&path, &tasks, &catalog), &path)?;
    }

    #[test]
    fn task_files_never_panic(bytes in inputs(std::fs::read(repo().join("experiments/tasks/no-crows-pairs.toml")).unwrap())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzzed-task.toml");
        std::fs::write(&path, &bytes).unwrap();
        names_file(TaskSpec::load(&path), &path)?;
    }
}
