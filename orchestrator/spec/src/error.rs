//! User-facing errors in spec files: every one names the file, the line and column,
//! the key, what was expected and how to fix it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a sweep, task or model catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// Dotted key path such as `models[1].source`; empty for whole-file problems.
    pub key: String,
    /// What is wrong and what was expected.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl SpecError {
    /// A problem at a byte span of `text` (the file's contents).
    pub fn at(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        SpecError {
            file: file.to_path_buf(),
            location: span.map(|s| line_col(text, s.start)),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A problem with the file as a whole (missing, unreadable).
    pub fn file(file: &Path, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        SpecError {
            file: file.to_path_buf(),
            location: None,
            key: String::new(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// 1-based (line, column) of a byte offset; columns count characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "a = 1\nø = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        let pos = text.find('=').unwrap();
        assert_eq!(line_col(text, pos), (1, 3));
        let pos = text.rfind('=').unwrap();
        assert_eq!(line_col(text, pos), (2, 3));
    }

    #[test]
    fn display_names_file_place_key_and_fix() {
        let e = SpecError::at(
            Path::new("s.toml"),
            "x\ny = 2\n",
            Some(2..3),
            "y",
            "unknown key",
            "remove it",
        );
        assert_eq!(
            e.to_string(),
            "s.toml:2:1: key `y`: unknown key\n  fix: remove it"
        );
    }
}
