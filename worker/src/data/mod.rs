//! Dataset loaders: CSV, JSON Lines, JSON (records or columns) and Parquet from a local file,
//! the Hugging Face cache or the Hub. Every row becomes a map from column name to value; the
//! task's `[dataset]` then picks its examples ([`examples`]).

pub mod examples;
pub mod lmeval;
pub mod lmeval_tasks;
mod parquet;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use spec::{DataFormat, DatasetRef, Source};

use engine::hub::{self, RepoKind};
use types::HubSettings;

/// One example: column → value.
pub type Row = Map<String, Value>;

/// A loaded dataset file.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Rows in file order.
    pub rows: Vec<Row>,
    /// Where it was read from.
    pub path: PathBuf,
}

/// Errors of dataset loading.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset is not the revision the run's manifest recorded.
    #[error(
        "the dataset {dataset} is at revision {found} on this worker, but the run was submitted with {recorded}\n  fix: restore revision {recorded} here, or submit the sweep again to evaluate the new data as a new run"
    )]
    RevisionChanged {
        /// The dataset source.
        dataset: String,
        /// Revision in the manifest.
        recorded: String,
        /// Revision found here.
        found: String,
    },
    /// The file cannot be read.
    #[error("{path}: {source}\n  fix: check the dataset path")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A row cannot be parsed.
    #[error("{path}:{line}: {message}\n  fix: {fix}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A column the task needs is missing.
    #[error("{path}: no column `{column}`; columns: {available}\n  fix: {fix}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Comma-separated columns present.
        available: String,
        /// How to fix it.
        fix: String,
    },
    /// A Hub dataset is not cached and cannot be downloaded.
    #[error(
        "dataset {repo}@{revision} file {file} is not in the local Hugging Face cache ({cache}) and could not be downloaded: {message}\n  fix: download it on a machine with network access (it is cached under {cache}), or point the sweep at a local copy with `[datasets] TASK = \"path:FILE\"`, for a few-shot pool `[fewshot_datasets]` (`nlebench eval`: `--dataset` / `--fewshot-dataset TASK=path:FILE`)"
    )]
    NotAvailable {
        /// `ORG/NAME`.
        repo: String,
        /// Revision.
        revision: String,
        /// File in the repository.
        file: String,
        /// Cache directory.
        cache: PathBuf,
        /// Why.
        message: String,
    },
}

/// Where a dataset file is, and its revision (Hub commit; `None` for local files).
pub fn locate(
    d: &DatasetRef,
    hub: &HubSettings,
    download: bool,
) -> Result<(PathBuf, Option<String>), DataError> {
    match &d.source {
        Source::Path { path } => Ok((path.clone(), None)),
        Source::Hf { repo, revision } => {
            let rev = revision.as_deref().unwrap_or("main");
            let file = d.file.clone().unwrap_or_default();
            if let Some((dir, commit)) = hub::cached_snapshot(hub, RepoKind::Dataset, repo, rev)
                && dir.join(&file).is_file()
            {
                return Ok((dir.join(&file), Some(commit)));
            }
            let err = |message: String| DataError::NotAvailable {
                repo: repo.clone(),
                revision: rev.to_string(),
                file: file.clone(),
                cache: hub.cache.clone(),
                message,
            };
            if !download {
                return Err(err("downloads are off".into()));
            }
            let name = file.clone();
            let pick = move |_: &[String]| vec![name.clone()];
            let (dir, commit) =
                hub::download(hub, RepoKind::Dataset, repo, rev, &pick, true).map_err(err)?;
            Ok((dir.join(&file), Some(commit)))
        }
        Source::Random { .. } => Err(DataError::Parse {
            path: PathBuf::from(d.source.to_string()),
            line: 0,
            message: "a dataset cannot be random".into(),
            fix: "use `hf:` or `path:`".into(),
        }),
    }
}

/// Read a dataset file.
pub fn read(path: &Path, format: DataFormat) -> Result<Table, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |line: u64, message: String, fix: &str| DataError::Parse {
        path: path.to_path_buf(),
        line,
        message,
        fix: fix.to_string(),
    };
    if format == DataFormat::Parquet {
        return parquet::read(path, &bytes);
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1;
            return Err(parse(
                line,
                format!("not valid UTF-8 (byte {})", e.valid_up_to()),
                "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`",
            ));
        }
    };
    match format {
        DataFormat::Csv => read_csv(path, &bytes, parse),
        DataFormat::Jsonl => read_jsonl(path, text, parse),
        DataFormat::Json | DataFormat::Parquet => read_json(path, &bytes, parse),
    }
}

/// One JSON object per line; blank lines are skipped.
fn read_jsonl(
    path: &Path,
    text: &str,
    parse: impl Fn(u64, String, &str) -> DataError,
) -> Result<Table, DataError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => rows.push(m),
            Ok(_) => {
                return Err(parse(
                    i as u64 + 1,
                    "the line is not a JSON object".into(),
                    "write one JSON object per line",
                ));
            }
            Err(e) => {
                return Err(parse(
                    i as u64 + 1,
                    format!("invalid JSON: {e}"),
                    "write one JSON object per line",
                ));
            }
        }
    }
    Ok(table(path, rows))
}

/// A JSON array of objects (records), or an object of equal-length arrays (columns, as
/// pandas' `to_json(orient="columns")` of a default index and `datasets`' `to_dict()` write).
fn read_json(
    path: &Path,
    bytes: &[u8],
    parse: impl Fn(u64, String, &str) -> DataError,
) -> Result<Table, DataError> {
    const FIX: &str = "use a JSON array of objects, or an object of equal-length arrays";
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        parse(
            e.line() as u64,
            format!("invalid JSON: {e}"),
            "fix the JSON",
        )
    })?;
    match v {
        Value::Array(items) => {
            let rows = items
                .into_iter()
                .enumerate()
                .map(|(i, it)| match it {
                    Value::Object(m) => Ok(m),
                    _ => Err(parse(1, format!("row {} is not an object", i + 1), FIX)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(table(path, rows))
        }
        Value::Object(cols) => {
            let mut n = None;
            for (name, col) in &cols {
                let len = match col {
                    Value::Array(a) => a.len(),
                    _ => return Err(parse(1, format!("column `{name}` is not an array"), FIX)),
                };
                if *n.get_or_insert(len) != len {
                    return Err(parse(
                        1,
                        format!(
                            "column `{name}` has {len} values, an earlier column {}",
                            n.unwrap_or(0)
                        ),
                        FIX,
                    ));
                }
            }
            let rows = (0..n.unwrap_or(0))
                .map(|i| {
                    cols.iter()
                        .map(|(name, col)| {
                            (name.clone(), col.get(i).cloned().unwrap_or(Value::Null))
                        })
                        .collect()
                })
                .collect();
            Ok(Table {
                columns: cols.keys().cloned().collect(),
                rows,
                path: path.to_path_buf(),
            })
        }
        _ => Err(parse(1, "expected a JSON array or object".into(), FIX)),
    }
}

fn read_csv(
    path: &Path,
    bytes: &[u8],
    parse: impl Fn(u64, String, &str) -> DataError,
) -> Result<Table, DataError> {
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| parse(1, e.to_string(), "fix the CSV header"))?
        .iter()
        .map(str::to_string)
        .collect();
    let line_at = |byte: u64| {
        // Inclusive: with CRLF line ends the reported byte is the `\n` before the record.
        bytes[..(byte as usize + 1).min(bytes.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1
    };
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| line_at(p.byte()));
            parse(
                line,
                e.to_string(),
                &format!(
                    "every CSV row needs as many fields as the header has names ({})",
                    headers.len()
                ),
            )
        })?;
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            m.insert(h.clone(), Value::String(v.to_string()));
        }
        rows.push(m);
    }
    for (i, h) in headers.iter().enumerate() {
        if let Some(j) = headers[..i].iter().position(|x| x == h) {
            return Err(parse(
                1,
                format!(
                    "column `{h}` appears twice in the header (columns {} and {}), so its values cannot be told apart",
                    j + 1,
                    i + 1
                ),
                "give every column its own name in the header row",
            ));
        }
    }
    Ok(Table {
        columns: headers,
        rows,
        path: path.to_path_buf(),
    })
}

fn table(path: &Path, rows: Vec<Row>) -> Table {
    let mut columns: Vec<String> = Vec::new();
    for r in &rows {
        for k in r.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    Table {
        columns,
        rows,
        path: path.to_path_buf(),
    }
}

impl Table {
    /// Fail unless every column in `needed` exists.
    pub fn require(&self, needed: &[&str], fix: &str) -> Result<(), DataError> {
        for c in needed {
            if !self.columns.iter().any(|x| x == c) {
                return Err(DataError::MissingColumn {
                    path: self.path.clone(),
                    column: c.to_string(),
                    available: self.columns.join(", "),
                    fix: fix.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Text of a cell: strings as they are, other JSON values printed, missing as empty.
pub fn text(row: &Row, column: &str) -> String {
    row.get(column).map(value_text).unwrap_or_default()
}

/// Text of a value: strings as they are, null as empty, other JSON values printed.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Keeps the last datasets read (a run's examples and few-shot pool) so the shards of a run do
/// not re-read them.
#[derive(Debug, Default)]
pub struct DatasetCache {
    /// The most recently used tables, the latest last.
    recent: Mutex<Vec<(String, Arc<Table>)>>,
}

/// Tables kept: a task's examples and its few-shot pool.
const KEPT: usize = 2;

impl DatasetCache {
    /// The table of `d` (revision as resolved at submission).
    pub fn get(
        &self,
        d: &DatasetRef,
        revision: &str,
        hub: &HubSettings,
    ) -> Result<Arc<Table>, DataError> {
        let key = format!(
            "{}|{:?}|{:?}|{:?}|{revision}",
            d.source, d.file, d.rows, d.explode
        );
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = recent.iter().position(|(k, _)| *k == key) {
            let hit = recent.remove(at);
            let table = hit.1.clone();
            recent.push(hit);
            return Ok(table);
        }
        let (path, commit) = locate(d, hub, true)?;
        let found = match commit {
            Some(c) => c,
            None => format!(
                "sha256:{}",
                engine::content::HashCache::new(None)
                    .sha256(&path)
                    .map_err(|e| DataError::Io {
                        path: path.clone(),
                        // The path is said once, by this error.
                        source: match e {
                            engine::EngineError::Io { source, .. } => source,
                            other => std::io::Error::other(other.to_string()),
                        },
                    })?
            ),
        };
        if found != revision {
            return Err(DataError::RevisionChanged {
                dataset: d.source.to_string(),
                recorded: revision.to_string(),
                found,
            });
        }
        let t = Arc::new(examples::select(d, read(&path, d.format)?)?);
        if recent.len() == KEPT {
            recent.remove(0);
        }
        recent.push((key, t.clone()));
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_jsonl_and_json() {
        let d = tempfile::tempdir().unwrap();
        let csv = d.path().join("a.csv");
        std::fs::write(&csv, "x,y\n\"ø, å\",2\n3,4\n").unwrap();
        let t = read(&csv, DataFormat::Csv).unwrap();
        assert_eq!(t.columns, ["x", "y"]);
        assert_eq!(text(&t.rows[0], "x"), "ø, å");
        let jl = d.path().join("a.jsonl");
        std::fs::write(&jl, "{\"x\": \"a\"}\n\n{\"x\": 1}\n").unwrap();
        let t = read(&jl, DataFormat::Jsonl).unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(text(&t.rows[1], "x"), "1");
        let js = d.path().join("a.json");
        std::fs::write(&js, "[{\"x\": \"a\"}]").unwrap();
        assert_eq!(read(&js, DataFormat::Json).unwrap().rows.len(), 1);
    }

    #[test]
    fn bad_files_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, b"x,y\n1,2\n\xff\xfe,3\n").unwrap();
        let e = read(&p, DataFormat::Csv).unwrap_err();
        assert!(e.to_string().contains(":3: not valid UTF-8"), "{e}");
        std::fs::write(&p, "x,y\n1,2\n3\n").unwrap();
        let e = read(&p, DataFormat::Csv).unwrap_err();
        assert!(e.to_string().contains(":3:"), "{e}");
        let t = read(&d.path().join("a.csv"), DataFormat::Csv);
        assert!(t.is_err());
    }

    #[test]
    fn missing_columns_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "x,y\n1,2\n").unwrap();
        let e = read(&p, DataFormat::Csv)
            .unwrap()
            .require(&["z"], "map it")
            .unwrap_err();
        assert!(
            e.to_string().contains("no column `z`; columns: x, y"),
            "{e}"
        );
    }
}
