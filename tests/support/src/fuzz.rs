//! Inputs for property tests of file readers: mutations of a real file (bytes replaced,
//! inserted, deleted, the file cut short) or random text and bytes, and the check that a
//! reader's error names the file.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// An edit of a text: replace, insert or delete a few bytes, or cut it short.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        // Characters that matter to TOML, JSON and CSV.
        (
            any::<usize>(),
            prop::sample::select(b"[]{}=\":.,\n#'\\0-".to_vec())
        )
            .prop_map(|(i, b)| Edit::Replace(i, b)),
    ]
}

fn apply(text: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut t = text.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match e {
            Edit::Replace(i, b) if !t.is_empty() => {
                let i = at(*i, t.len());
                t[i] = *b;
            }
            Edit::Insert(i, bytes) => {
                let i = at(*i, t.len() + 1);
                t.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(i, n) if !t.is_empty() => {
                let i = at(*i, t.len());
                let end = (i + n).min(t.len());
                t.drain(i..end);
            }
            Edit::Truncate(i) => {
                let i = at(*i, t.len() + 1);
                t.truncate(i);
            }
            _ => {}
        }
    }
    t
}

/// Mutations of `base`, or random text and bytes.
pub fn inputs(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(edit(), 1..6).prop_map(move |e| apply(&base, &e)),
        1 => ".{0,400}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ]
}

/// `Ok`, or an error that names `path`.
pub fn names_file<T, E: std::fmt::Display>(
    r: Result<T, E>,
    path: &Path,
) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        let shown = path.file_name().unwrap().to_string_lossy().to_string();
        prop_assert!(
            e.to_string().contains(&shown),
            "error without the file name: {e}"
        );
    }
    Ok(())
}

/// Cases per property: 128, or `PROPTEST_CASES` for a longer local search.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}
