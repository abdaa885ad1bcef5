//! Parquet files (the Hub's converted datasets), read with the `parquet` crate's Arrow reader
//! and turned into JSON rows by `arrow-json`, so every Arrow type reads as it would in JSON.

use std::path::Path;

use arrow_json::writer::{JsonArray, WriterBuilder};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::{DataError, Row, Table};

/// Read a Parquet file's rows; `bytes` are its contents.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Table, DataError> {
    let err = |message: String| DataError::Parse {
        path: path.to_path_buf(),
        line: 0,
        message,
        fix: "write the file with pyarrow/pandas `to_parquet`, or convert it to jsonl".into(),
    };
    let data = bytes::Bytes::copy_from_slice(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let columns: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let reader = builder
        .build()
        .map_err(|e| err(format!("cannot read the row groups: {e}")))?;
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for batch in reader {
        let batch = batch.map_err(|e| err(format!("cannot decode a row group: {e}")))?;
        writer
            .write_batches(&[&batch])
            .map_err(|e| err(format!("cannot convert a row group: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| err(format!("cannot convert the rows: {e}")))?;
    let json = writer.into_inner();
    let rows: Vec<Row> = if json.is_empty() {
        Vec::new()
    } else {
        match serde_json::from_slice::<Value>(&json) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                })
                .collect(),
            Ok(_) | Err(_) => return Err(err("the rows did not convert to JSON objects".into())),
        }
    };
    Ok(Table {
        columns,
        rows,
        path: path.to_path_buf(),
    })
}
