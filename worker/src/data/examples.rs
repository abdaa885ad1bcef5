//! A task's examples from its dataset file: the `[dataset]` row range, list columns exploded
//! into one example per item, and a check that every example has the fields the task reads.

use serde_json::Value;
use spec::{DatasetRef, ListColumn};

use harness::literal;

use super::{DataError, Row, Table};

/// The examples of `table` as `d` selects them: rows in `d.rows`, then `d.explode` applied.
pub fn select(d: &DatasetRef, table: Table) -> Result<Table, DataError> {
    let mut table = table;
    if let Some(range) = d.rows {
        let r = range.of(table.rows.len() as u64);
        table.rows = table.rows[r.start as usize..r.end as usize].to_vec();
    }
    match &d.explode {
        Some(list) => explode(&table, list),
        None => Ok(table),
    }
}

/// The items of a list cell: a Python literal or JSON list of tuples, each with as many parts
/// as `list.into` names (a bare string for a single part).
pub fn items(table: &Table, row: usize, list: &ListColumn) -> Result<Vec<Row>, DataError> {
    let err = |message: String| DataError::Parse {
        path: table.path.clone(),
        line: row as u64 + 1,
        message: format!("row {}, column `{}`: {message}", row + 1, list.column),
        fix: format!(
            "write the column as a list of {}-tuples, e.g. [('…', '…')]",
            list.into.len()
        ),
    };
    let value = match table.rows[row].get(&list.column) {
        Some(Value::String(s)) => literal::parse(s).map_err(&err)?,
        Some(v @ Value::Array(_)) => v.clone(),
        Some(other) => return Err(err(format!("expected a list, found {}", kind(other)))),
        None => return Err(err("the row has no such field".into())),
    };
    let Value::Array(list_items) = value else {
        return Err(err(format!("expected a list, found {}", kind(&value))));
    };
    list_items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let parts = match item {
                Value::Array(p) => p,
                v @ Value::String(_) => vec![v],
                other => {
                    return Err(err(format!(
                        "item {} is {}, not a tuple",
                        i + 1,
                        kind(&other)
                    )));
                }
            };
            if parts.len() != list.into.len() {
                return Err(err(format!(
                    "item {} has {} parts; `into` names {} ({})",
                    i + 1,
                    parts.len(),
                    list.into.len(),
                    list.into.join(", ")
                )));
            }
            Ok(list.into.iter().cloned().zip(parts).collect())
        })
        .collect()
}

/// One example per item of `list.column`: the row's other columns, the item's parts, and
/// `item` (its 0-based position in the list).
fn explode(table: &Table, list: &ListColumn) -> Result<Table, DataError> {
    let mut rows = Vec::new();
    for i in 0..table.rows.len() {
        for (k, parts) in items(table, i, list)?.into_iter().enumerate() {
            let mut row = table.rows[i].clone();
            row.remove(&list.column);
            row.extend(parts);
            row.insert("item".into(), Value::from(k));
            rows.push(row);
        }
    }
    let mut columns: Vec<String> = table
        .columns
        .iter()
        .filter(|c| **c != list.column)
        .cloned()
        .collect();
    columns.extend(list.into.iter().cloned());
    columns.push("item".into());
    Ok(Table {
        columns,
        rows,
        path: table.path.clone(),
    })
}

/// Every example has each of `fields` as text (a string, number or boolean): a missing field,
/// a null, a list or an object is an error naming the file, the row and the field.
pub fn check_fields(table: &Table, fields: &[&str]) -> Result<(), DataError> {
    table.require(fields, "fix `[fields]` or the template in the task file")?;
    for (i, row) in table.rows.iter().enumerate() {
        for f in fields {
            let problem = match row.get(*f) {
                None => Some("has no value (the field is missing)".to_string()),
                Some(Value::Null) => Some("has no value (null)".to_string()),
                Some(v @ (Value::Array(_) | Value::Object(_))) => {
                    Some(format!("is {}, expected text", kind(v)))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                return Err(DataError::Parse {
                    path: table.path.clone(),
                    line: i as u64 + 1,
                    message: format!("row {}: field `{f}` {problem}", i + 1),
                    fix:
                        "give every example this field as text, or point the task at another column"
                            .into(),
                });
            }
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `n` examples of `table` drawn without replacement by a ChaCha8 generator seeded with
/// `seed`, kept in file order (all of them when the table is not larger).
pub fn sample(table: &Table, n: u64, seed: u64) -> Table {
    use rand::SeedableRng;
    let total = table.rows.len();
    let n = (n as usize).min(total);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut picked = rand::seq::index::sample(&mut rng, total, n).into_vec();
    picked.sort_unstable();
    Table {
        columns: table.columns.clone(),
        rows: picked.into_iter().map(|i| table.rows[i].clone()).collect(),
        path: table.path.clone(),
    }
}
