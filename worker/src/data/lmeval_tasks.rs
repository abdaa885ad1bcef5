//! The documents of lm-eval task files ([`harness::Datasets`]), read as `datasets.load_dataset`
//! reads them: `dataset_path: json|csv|parquet` with `dataset_kwargs.data_files` (one file, a
//! list, or split → file(s); relative paths from the current directory, as `datasets` takes
//! them), or a Hub dataset from the Hugging Face cache (downloaded into it when downloads are
//! on): the data files of the snapshot for the configuration (`dataset_name`) and split.
//! Every document carries every column (`null` where a row lacks one), as a `datasets` table
//! does; CSV columns whose every value is a whole number are numbers, as pandas reads them.

use std::path::{Path, PathBuf};

use harness::DatasetSpec;
use serde_json::{Map, Value};
use spec::DataFormat;

use engine::hub::{self, RepoKind};
use types::HubSettings;

/// Reads the splits of lm-eval tasks' datasets.
pub struct TaskData {
    /// The Hugging Face cache and whether downloads are allowed.
    pub hub: HubSettings,
    /// Whether a Hub dataset missing from the cache may be downloaded.
    pub download: bool,
}

impl harness::Datasets for TaskData {
    fn split(&self, spec: &DatasetSpec<'_>, split: &str) -> Result<Vec<Value>, String> {
        let path = spec.path.ok_or("the task file names no `dataset_path`")?;
        let files = match path {
            "json" | "csv" | "parquet" => local_files(spec, split)?,
            repo => self.hub_files(repo, spec.name, split)?,
        };
        let mut rows = Vec::new();
        for f in &files {
            rows.extend(read(f, path)?);
        }
        Ok(complete(rows))
    }
}

impl TaskData {
    fn hub_files(
        &self,
        repo: &str,
        name: Option<&str>,
        split: &str,
    ) -> Result<Vec<PathBuf>, String> {
        let cached = hub::cached_snapshot(&self.hub, RepoKind::Dataset, repo, "main");
        let (dir, _) = match cached {
            Some(found) if !split_files(&listing(&found.0), name, split).is_empty() => found,
            _ if self.download => {
                let name = name.map(str::to_string);
                let split_name = split.to_string();
                let pick = move |all: &[String]| split_files(all, name.as_deref(), &split_name);
                hub::download(&self.hub, RepoKind::Dataset, repo, "main", &pick, true).map_err(|e| {
                    format!(
                        "the Hub dataset {repo} is not in the Hugging Face cache ({}) and could not be downloaded: {e}\n  fix: download it where the Hub is reachable (`huggingface-cli download --repo-type dataset {repo}`), or point the task at local files with `dataset_path: json` and `dataset_kwargs: {{data_files: {{{split}: FILE}}}}`",
                        self.hub.cache.display()
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "the Hub dataset {repo} has no files for split `{split}`{} in the Hugging Face cache ({}) and downloads are off\n  fix: download it (`huggingface-cli download --repo-type dataset {repo}`), or point the task at local files with `dataset_path: json` and `dataset_kwargs: {{data_files: {{{split}: FILE}}}}`",
                    name.map(|n| format!(" of configuration `{n}`"))
                        .unwrap_or_default(),
                    self.hub.cache.display()
                ));
            }
        };
        let files: Vec<PathBuf> = split_files(&listing(&dir), name, split)
            .into_iter()
            .map(|f| dir.join(f))
            .collect();
        if files.is_empty() {
            return Err(format!(
                "the Hub dataset {repo} has no data file for split `{split}`{} (looked for parquet, jsonl, json and csv files named after the split)",
                name.map(|n| format!(" of configuration `{n}`"))
                    .unwrap_or_default()
            ));
        }
        Ok(files)
    }
}

/// Every file under `dir`, as paths relative to it with `/` separators.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

/// The repository's data files of one configuration and split, in name order: the Hub's
/// layouts `CONFIG/SPLIT-00000-of-00001.parquet`, `data/SPLIT-*.parquet`, `CONFIG/SPLIT.jsonl`
/// and `SPLIT/*.parquet`.
fn split_files(all: &[String], name: Option<&str>, split: &str) -> Vec<String> {
    let data = |f: &&String| DataFormat::from_path(Path::new(f.as_str())).is_some();
    let of_split = |f: &&String| {
        let parts: Vec<&str> = f.split('/').collect();
        let stem = parts
            .last()
            .map_or("", |file| file.split(['.', '-']).next().unwrap_or(""));
        stem == split || parts[..parts.len() - 1].contains(&split)
    };
    let mut files: Vec<String> = all.iter().filter(data).filter(of_split).cloned().collect();
    if let Some(name) = name {
        let in_config: Vec<String> = files
            .iter()
            .filter(|f| f.split('/').any(|p| p == name))
            .cloned()
            .collect();
        if !in_config.is_empty() || files.iter().any(|f| f.contains('/')) {
            files = in_config;
        }
    }
    files.sort();
    files
}

/// `data_files` for one split: a file or list (the `train` split), or a mapping by split.
fn local_files(spec: &DatasetSpec<'_>, split: &str) -> Result<Vec<PathBuf>, String> {
    let files = spec.kwargs.and_then(|k| k.get("data_files")).ok_or(
        "`dataset_path` names a file format, so `dataset_kwargs.data_files` must name the files",
    )?;
    let list = |v: &Value| -> Result<Vec<PathBuf>, String> {
        match v {
            Value::String(s) => Ok(vec![PathBuf::from(s)]),
            Value::Array(a) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(PathBuf::from)
                        .ok_or_else(|| format!("{s} is not a file name"))
                })
                .collect(),
            other => Err(format!("`data_files` holds {other}, not file names")),
        }
    };
    match files {
        Value::Object(by_split) => match by_split.get(split) {
            Some(v) => list(v),
            None => Err(format!(
                "`dataset_kwargs.data_files` has no split `{split}` (it has {})",
                by_split.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        },
        v if split == "train" => list(v),
        _ => Err(format!(
            "`dataset_kwargs.data_files` names files for the `train` split only, not `{split}`"
        )),
    }
}

/// One file's rows: `format` is `json` (JSON Lines, or a JSON array), `csv` or `parquet`, or
/// for Hub files the file's extension.
fn read(file: &Path, format: &str) -> Result<Vec<Map<String, Value>>, String> {
    let by_ext = DataFormat::from_path(file);
    let format = match (format, by_ext) {
        ("csv", _) => DataFormat::Csv,
        ("parquet", _) => DataFormat::Parquet,
        ("json", Some(DataFormat::Json)) => DataFormat::Json,
        ("json", _) => DataFormat::Jsonl,
        (_, Some(f)) => f,
        (_, None) => {
            return Err(format!(
                "{}: not a data file (parquet, jsonl, json or csv)",
                file.display()
            ));
        }
    };
    let table = match super::read(file, format) {
        // `datasets`' json reader takes JSON Lines in a `.json` file as well.
        Err(_) if format == DataFormat::Json => super::read(file, DataFormat::Jsonl),
        other => other,
    }
    .map_err(|e| e.to_string())?;
    let mut rows = table.rows;
    if format == DataFormat::Csv {
        numbers_in_csv(&mut rows);
    }
    Ok(rows)
}

/// Columns of whole numbers become numbers and empty fields `null`, as pandas reads a CSV.
fn numbers_in_csv(rows: &mut [Map<String, Value>]) {
    let columns: Vec<String> = rows
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    for c in columns {
        let whole = rows.iter().all(|r| match r.get(&c) {
            Some(Value::String(s)) => s.is_empty() || s.parse::<i64>().is_ok(),
            _ => true,
        });
        let any = rows
            .iter()
            .any(|r| matches!(r.get(&c), Some(Value::String(s)) if !s.is_empty()));
        for r in rows.iter_mut() {
            if let Some(Value::String(s)) = r.get(&c) {
                let v = if s.is_empty() {
                    Value::Null
                } else if whole && any {
                    s.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
                } else {
                    continue;
                };
                r.insert(c.clone(), v);
            }
        }
    }
}

/// Documents with every column any row has.
fn complete(rows: Vec<Map<String, Value>>) -> Vec<Value> {
    let mut columns: Vec<String> = Vec::new();
    for r in &rows {
        for k in r.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    rows.into_iter()
        .map(|mut r| {
            for c in &columns {
                r.entry(c.clone()).or_insert(Value::Null);
            }
            Value::Object(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_layouts_give_the_configuration_and_split() {
        let all: Vec<String> = [
            "README.md",
            "nb/train-00000-of-00001.parquet",
            "nb/test-00000-of-00001.parquet",
            "nn/test-00000-of-00001.parquet",
            "data/validation.jsonl",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            split_files(&all, Some("nb"), "test"),
            ["nb/test-00000-of-00001.parquet"]
        );
        assert_eq!(split_files(&all, Some("nn"), "train"), Vec::<String>::new());
        assert_eq!(
            split_files(&all, None, "validation"),
            ["data/validation.jsonl"]
        );
        let flat: Vec<String> = ["test.csv".to_string()].to_vec();
        assert_eq!(split_files(&flat, Some("default"), "test"), ["test.csv"]);
    }

    #[test]
    fn csv_columns_read_as_pandas_reads_them() {
        let mut rows: Vec<Map<String, Value>> = vec![
            serde_json::from_str(r#"{"label": "1", "text": "Ja", "code": "07"}"#).unwrap(),
            serde_json::from_str(r#"{"label": "0", "text": "", "code": "x"}"#).unwrap(),
        ];
        numbers_in_csv(&mut rows);
        assert_eq!(rows[0]["label"], Value::from(1));
        assert_eq!(rows[1]["text"], Value::Null);
        assert_eq!(rows[0]["code"], Value::from("07"));
    }
}
