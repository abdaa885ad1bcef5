//! No panic from a dataset file: mutations of the shipped CSV and JSONL files and random
//! bytes give a table or an error naming the file, in every format the reader takes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use spec::DataFormat;
use test_support::fuzz::{inputs, names_file};
use test_support::repo;

fn check(bytes: &[u8], name: &str, format: DataFormat) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    names_file(worker::data::read(&path, format), &path)
}

proptest! {
    #![proptest_config(test_support::fuzz::config())]

    #[test]
    fn csv_files_never_panic(bytes in inputs(std::fs::read(repo().join("experiments/data/no-crows-pairs-mini.csv")).unwrap())) {
        check(&bytes, "fuzzed.csv", DataFormat::Csv)?;
    }

    #[test]
    fn jsonl_files_never_panic(bytes in inputs(std::fs::read(repo().join("experiments/data/no-boolq-mini.jsonl")).unwrap())) {
        check(&bytes, "fuzzed.jsonl", DataFormat::Jsonl)?;
        check(&bytes, "fuzzed.json", DataFormat::Json)?;
    }
}
