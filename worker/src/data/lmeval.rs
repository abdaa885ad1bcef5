//! lm-evaluation-harness's per-sample files (`samples_TASK_DATE.jsonl`, written by `lm_eval
//! --log_samples`) as a table of outputs: one row per document, in `doc_id` order, with the
//! columns `doc_id`, `prompt` (the first request's context), `output`, `target` and
//! `doc.KEY` for each field of the document.
//!
//! `output` is the filtered response of a `generate_until` request; for `multiple_choice`
//! it is the choice with the highest log-likelihood, written as its continuation without the
//! target delimiter (and `target`, when it is a choice's index, that choice), so that a
//! classification task compares label words.

use std::path::Path;

use serde_json::{Map, Value};
use spec::DataFormat;

use super::{DataError, Row, Table};

const FIX: &str = "give a samples_TASK_DATE.jsonl file written by `lm_eval --log_samples`";

/// The newest samples file lm-eval wrote for `task` in folder `dir` (`samples_TASK_DATE.jsonl`),
/// if any.
pub fn samples_file(dir: &Path, task: &str) -> Result<Option<std::path::PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let prefix = format!("samples_{task}_");
    let mut newest: Option<(String, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(date) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".jsonl"))
            .filter(|d| is_date_id(d))
        else {
            continue;
        };
        if newest.as_ref().is_none_or(|(d, _)| date > d.as_str()) {
            newest = Some((date.to_string(), entry.path()));
        }
    }
    Ok(newest.map(|(_, p)| p))
}

/// lm-eval's `date_id` (`datetime.now().isoformat().replace(":", "-")`, e.g.
/// `2026-12-07T14-05-03.123456`), which tells `samples_TASK_DATE` apart from the samples of a
/// task whose name continues `TASK_`.
fn is_date_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && s.chars().all(|c| c.is_ascii_digit() || "-T.".contains(c))
}

/// Read the lm-eval samples file at `path`.
pub fn read(path: &Path) -> Result<Table, DataError> {
    let lines = super::read(path, DataFormat::Jsonl)?;
    let bad = |i: usize, message: String, fix: &str| DataError::Parse {
        path: path.to_path_buf(),
        line: i as u64 + 1,
        message,
        fix: fix.to_string(),
    };
    let mut filters: Vec<String> = Vec::new();
    let mut rows: Vec<(i64, Row)> = Vec::with_capacity(lines.rows.len());
    for (i, line) in lines.rows.iter().enumerate() {
        let field = |key: &str| {
            line.get(key)
                .ok_or_else(|| bad(i, format!("no `{key}`: not an lm-eval samples line"), FIX))
        };
        let doc_id = field("doc_id")?
            .as_i64()
            .ok_or_else(|| bad(i, "`doc_id` is not a whole number".into(), FIX))?;
        if let Some(f) = line.get("filter").and_then(Value::as_str)
            && !filters.iter().any(|g| g == f)
        {
            filters.push(f.to_string());
        }
        let args = arguments(field("arguments")?);
        let prompt = args
            .first()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or_default();
        let target = super::value_text(field("target")?);
        let (output, target) = match field("filtered_resps")? {
            Value::Array(resps) => match resps.first() {
                Some(Value::String(text)) => (text.clone(), target),
                Some(Value::Array(_)) if resps.len() >= 2 => {
                    let choice = |k: usize| {
                        args.get(k)
                            .and_then(|a| a.get(1))
                            .and_then(Value::as_str)
                            .map(|c| c.trim().to_string())
                    };
                    let best = best_choice(resps).ok_or_else(|| {
                        bad(
                            i,
                            "`filtered_resps` are not (log-likelihood, is-greedy) pairs".into(),
                            FIX,
                        )
                    })?;
                    let output = choice(best).unwrap_or_default();
                    let target = match target.trim().parse::<usize>() {
                        Ok(k) if k < resps.len() => choice(k).unwrap_or(target),
                        _ => target,
                    };
                    (output, target)
                }
                _ => {
                    return Err(bad(
                        i,
                        "the responses are log-likelihoods of a single continuation (a `loglikelihood` or `loglikelihood_rolling` task): there is no output to rescore".into(),
                        "import the samples of a `generate_until` or `multiple_choice` task",
                    ));
                }
            },
            _ => return Err(bad(i, "`filtered_resps` is not a list".into(), FIX)),
        };
        let mut row = Row::new();
        row.insert("doc_id".into(), Value::from(doc_id));
        row.insert("prompt".into(), Value::from(prompt));
        row.insert("output".into(), Value::from(output));
        row.insert("target".into(), Value::from(target));
        if let Some(Value::Object(doc)) = line.get("doc") {
            for (k, v) in doc {
                row.insert(format!("doc.{k}"), v.clone());
            }
        }
        rows.push((doc_id, row));
    }
    if filters.len() > 1 {
        return Err(bad(
            0,
            format!(
                "the file holds the responses of {} filters ({}), one line per document and filter",
                filters.len(),
                filters.join(", ")
            ),
            "keep one filter's lines, e.g. `jq -c 'select(.filter == \"none\")' FILE > ONE.jsonl`",
        ));
    }
    rows.sort_by_key(|(id, _)| *id);
    let mut columns: Vec<String> = ["doc_id", "prompt", "output", "target"]
        .map(String::from)
        .to_vec();
    for (_, row) in &rows {
        for k in row.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    Ok(Table {
        columns,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
        path: path.to_path_buf(),
    })
}

/// One document of an lm-eval samples file, as lm-eval wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Its (first) line in the file, 1-based.
    pub line: u64,
    /// The document's index in the task.
    pub doc_id: usize,
    /// Each request's arguments, where the file has them.
    pub arguments: Option<Vec<Vec<Value>>>,
    /// Each request's response as lm-eval wrote it (`resps[k][0]`).
    pub resps: Vec<Value>,
}

/// The documents of the lm-eval samples file at `path`, in order: one per document (lm-eval
/// writes a line per filter, with the same responses), the task's first documents without a
/// gap (`--limit N` evaluates the first N).
pub fn documents(path: &Path) -> Result<Vec<Document>, DataError> {
    let lines = super::read(path, DataFormat::Jsonl)?;
    let bad = |i: usize, message: String, fix: &str| DataError::Parse {
        path: path.to_path_buf(),
        line: i as u64 + 1,
        message,
        fix: fix.to_string(),
    };
    let mut out: Vec<Document> = Vec::new();
    for (i, line) in lines.rows.iter().enumerate() {
        let doc_id = line.get("doc_id").and_then(Value::as_u64).ok_or_else(|| {
            bad(
                i,
                "no whole-number `doc_id`: not an lm-eval samples line".into(),
                FIX,
            )
        })? as usize;
        if out.last().is_some_and(|d| d.doc_id == doc_id) {
            continue;
        }
        if doc_id != out.len() {
            return Err(bad(
                i,
                format!(
                    "document {doc_id} where document {} was next: an import holds the task's first documents, in order",
                    out.len()
                ),
                "give the whole file lm-eval wrote (`--limit N` evaluates the first N documents)",
            ));
        }
        let resps = line
            .get("resps")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(i, "no `resps` list".into(), FIX))?;
        out.push(Document {
            line: i as u64 + 1,
            doc_id,
            arguments: line.get("arguments").map(arguments),
            resps: resps
                .iter()
                .map(|r| r.as_array().and_then(|a| a.first()).unwrap_or(r).clone())
                .collect(),
        });
    }
    Ok(out)
}

/// A response as lm-eval's `sanitize_list` wrote it (numbers and flags as Python's `str`), as
/// a run stores it: `[log-likelihood, is_greedy]` for `loglikelihood`, the number for
/// `loglikelihood_rolling`, the text for `generate_until`.
pub fn response(written: &Value, request_type: &str) -> Option<Value> {
    let number = |v: &Value| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok());
    let flag = |v: &Value| {
        v.as_bool().or_else(|| match v.as_str()? {
            "True" | "true" => Some(true),
            "False" | "false" => Some(false),
            _ => None,
        })
    };
    match request_type {
        "generate_until" => written.as_str().map(Value::from),
        "loglikelihood_rolling" => number(written).map(Value::from),
        _ => {
            let pair = written.as_array()?;
            Some(serde_json::json!([
                number(pair.first()?)?,
                flag(pair.get(1)?)?
            ]))
        }
    }
}

/// The requests' arguments, in order: lm-eval writes them as `{"gen_args_0": {"arg_0": …,
/// "arg_1": …}, …}` (older versions as a list of lists).
fn arguments(v: &Value) -> Vec<Vec<Value>> {
    let ordered = |m: &Map<String, Value>, prefix: &str| {
        let mut items: Vec<(usize, &Value)> = m
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.parse().ok()?, v)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    match v {
        Value::Object(reqs) => ordered(reqs, "gen_args_")
            .iter()
            .map(|r| match r {
                Value::Object(args) => ordered(args, "arg_"),
                Value::Array(args) => args.clone(),
                other => vec![other.clone()],
            })
            .collect(),
        Value::Array(reqs) => reqs
            .iter()
            .map(|r| match r {
                Value::Array(args) => args.clone(),
                other => vec![other.clone()],
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The index of the choice with the highest log-likelihood (the first on a tie, as numpy's
/// `argmax` in lm-eval's `acc`).
fn best_choice(resps: &[Value]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (k, r) in resps.iter().enumerate() {
        let ll = match r {
            Value::Array(pair) => pair.first().map(super::value_text)?.parse::<f64>().ok()?,
            _ => return None,
        };
        if best.is_none_or(|(_, b)| ll > b) {
            best = Some((k, ll));
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_newest_samples_file_of_a_task_is_found_by_its_date() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "samples_nor_p0_2026-12-07T14-05-03.123456.jsonl",
            "samples_nor_p0_2026-12-08T09-00-00.000001.jsonl",
            "samples_nor_p0_extra_2026-12-09T09-00-00.000001.jsonl",
            "results_2026-12-08T09-00-00.000001.json",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found = samples_file(dir.path(), "nor_p0").unwrap().unwrap();
        assert!(found.ends_with("samples_nor_p0_2026-12-08T09-00-00.000001.jsonl"));
        assert!(samples_file(dir.path(), "nor_p1").unwrap().is_none());
    }

    fn table_of(lines: &str) -> Result<Table, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples_t_2026.jsonl");
        std::fs::write(&path, lines).unwrap();
        read(&path)
    }

    #[test]
    fn generate_until_lines_become_rows_in_doc_order() {
        let t = table_of(concat!(
            r#"{"doc_id": 1, "doc": {"article": "B"}, "target": "rb", "arguments": {"gen_args_0": {"arg_0": "pb", "arg_1": {"until": ["\n"]}}}, "resps": [["ob"]], "filtered_resps": ["ob"], "filter": "none"}"#,
            "\n",
            r#"{"doc_id": 0, "doc": {"article": "A"}, "target": "ra", "arguments": {"gen_args_0": {"arg_0": "pa", "arg_1": {}}}, "resps": [["oa"]], "filtered_resps": ["oa"], "filter": "none"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(
            t.columns,
            ["doc_id", "prompt", "output", "target", "doc.article"]
        );
        let col = |c: &str| {
            t.rows
                .iter()
                .map(|r| super::super::text(r, c))
                .collect::<Vec<_>>()
        };
        assert_eq!(col("output"), ["oa", "ob"]);
        assert_eq!(col("prompt"), ["pa", "pb"]);
        assert_eq!(col("target"), ["ra", "rb"]);
        assert_eq!(col("doc.article"), ["A", "B"]);
    }

    #[test]
    fn multiple_choice_lines_give_the_most_likely_choice_and_the_gold_choice() {
        let t = table_of(concat!(
            r#"{"doc_id": 0, "doc": {}, "target": "1", "arguments": {"gen_args_0": {"arg_0": "Q:", "arg_1": " nei"}, "gen_args_1": {"arg_0": "Q:", "arg_1": " ja"}}, "resps": [], "filtered_resps": [["-3.5", "False"], ["-1.25", "True"]], "filter": "none"}"#,
            "\n"
        ))
        .unwrap();
        assert_eq!(super::super::text(&t.rows[0], "output"), "ja");
        assert_eq!(super::super::text(&t.rows[0], "target"), "ja");
    }

    #[test]
    fn loglikelihood_lines_and_mixed_filters_are_refused_with_the_line_and_fix() {
        let e = table_of(
            r#"{"doc_id": 0, "doc": {}, "target": "x", "arguments": {"gen_args_0": {"arg_0": "", "arg_1": "x"}}, "filtered_resps": [["-3.5", "False"]], "filter": "none"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(":1: the responses are log-likelihoods of a single continuation"),
            "{e}"
        );
        let line = |f: &str| {
            format!(
                r#"{{"doc_id": 0, "doc": {{}}, "target": "x", "arguments": {{}}, "filtered_resps": ["y"], "filter": "{f}"}}"#
            )
        };
        let e = table_of(&format!("{}\n{}\n", line("none"), line("take_first")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 filters (none, take_first)") && e.contains("jq -c"),
            "{e}"
        );
        let e = table_of(r#"{"doc": {}}"#).unwrap_err().to_string();
        assert!(
            e.contains(":1: no `doc_id`: not an lm-eval samples line"),
            "{e}"
        );
    }
}
