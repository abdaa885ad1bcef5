//! The same small dataset written as CSV, JSON Lines, JSON (records and columns) and Parquet
//! reads as identical examples; a missing field or a wrong type names file, row and field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, ListArray, RecordBatch, StringArray, types::Int32Type};
use parquet::arrow::ArrowWriter;
use serde_json::json;
use spec::{DataFormat, DatasetRef, ListColumn, RowRange, Source};
use worker::data::{examples, read, text};

const ROWS: [(&str, &str, i64); 3] = [
    ("Oslo er hovedstaden i Norge.", "er oslo hovedstaden", 1),
    (
        "Bergen, «byen mellom de syv fjell».",
        "ligger bergen i nord",
        0,
    ),
    ("Tromsø har midnattssol.", "har tromsø midnattssol", 1),
];

/// `batch` as a Parquet file at `path`.
fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn write_all(dir: &Path) -> Vec<(PathBuf, DataFormat)> {
    let csv = dir.join("d.csv");
    let mut w = csv::Writer::from_path(&csv).unwrap();
    w.write_record(["passage", "question", "label"]).unwrap();
    for (p, q, l) in ROWS {
        w.write_record([p, q, &l.to_string()]).unwrap();
    }
    w.flush().unwrap();

    let records: Vec<serde_json::Value> = ROWS
        .iter()
        .map(|(p, q, l)| json!({ "passage": p, "question": q, "label": l }))
        .collect();
    let jsonl = dir.join("d.jsonl");
    std::fs::write(
        &jsonl,
        records
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let json_records = dir.join("records.json");
    std::fs::write(&json_records, serde_json::to_string(&records).unwrap()).unwrap();
    let json_columns = dir.join("columns.json");
    std::fs::write(
        &json_columns,
        json!({
            "passage": ROWS.iter().map(|r| r.0).collect::<Vec<_>>(),
            "question": ROWS.iter().map(|r| r.1).collect::<Vec<_>>(),
            "label": ROWS.iter().map(|r| r.2).collect::<Vec<_>>(),
        })
        .to_string(),
    )
    .unwrap();

    let parquet = dir.join("d.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "passage",
            Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "question",
            Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.1))) as ArrayRef,
        ),
        (
            "label",
            Arc::new(Int64Array::from_iter_values(ROWS.iter().map(|r| r.2))) as ArrayRef,
        ),
    ])
    .unwrap();
    write_parquet(&parquet, &batch);

    vec![
        (csv, DataFormat::Csv),
        (jsonl, DataFormat::Jsonl),
        (json_records, DataFormat::Json),
        (json_columns, DataFormat::Json),
        (parquet, DataFormat::Parquet),
    ]
}

#[test]
fn every_format_reads_as_the_same_examples() {
    let d = tempfile::tempdir().unwrap();
    let files = write_all(d.path());
    let as_text = |path: &Path, f: DataFormat| {
        let t = read(path, f).unwrap();
        let mut cols = t.columns.clone();
        cols.sort();
        let cells: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| cols.iter().map(|c| text(r, c)).collect())
            .collect();
        (cols, cells)
    };
    let (first_path, first_format) = &files[0];
    let expected = as_text(first_path, *first_format);
    assert_eq!(expected.1.len(), 3);
    assert_eq!(expected.1[1][2], "ligger bergen i nord");
    for (path, format) in &files[1..] {
        assert_eq!(
            as_text(path, *format),
            expected,
            "{} differs from the CSV",
            path.display()
        );
        assert_eq!(DataFormat::from_path(path), Some(*format));
    }
}

#[test]
fn a_missing_field_or_a_wrong_type_names_file_row_and_field() {
    let d = tempfile::tempdir().unwrap();
    let jsonl = d.path().join("gaps.jsonl");
    std::fs::write(
        &jsonl,
        "{\"passage\": \"a\", \"question\": \"b\", \"label\": 1}\n{\"passage\": \"c\", \"label\": 0}\n",
    )
    .unwrap();
    let t = read(&jsonl, DataFormat::Jsonl).unwrap();
    let e = examples::check_fields(&t, &["passage", "question", "label"]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("gaps.jsonl"), "{msg}");
    assert!(
        msg.contains("row 2: field `question` has no value"),
        "{msg}"
    );

    // A list where the task reads text.
    let parquet = d.path().join("typed.parquet");
    let questions = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1)]),
        Some(vec![Some(2), Some(3)]),
    ]);
    let batch = RecordBatch::try_from_iter([
        (
            "passage",
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
        ),
        ("question", Arc::new(questions) as ArrayRef),
    ])
    .unwrap();
    write_parquet(&parquet, &batch);
    let t = read(&parquet, DataFormat::Parquet).unwrap();
    let msg = examples::check_fields(&t, &["passage", "question"])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("typed.parquet"), "{msg}");
    assert!(
        msg.contains("row 1: field `question` is a list, expected text"),
        "{msg}"
    );

    // Not Parquet at all.
    let fake = d.path().join("fake.parquet");
    std::fs::write(&fake, "passage,question\n").unwrap();
    let msg = read(&fake, DataFormat::Parquet).unwrap_err().to_string();
    assert!(
        msg.contains("fake.parquet") && msg.contains("not a readable Parquet file"),
        "{msg}"
    );
}

fn dataset(path: &Path, rows: Option<&str>, explode: Option<ListColumn>) -> DatasetRef {
    DatasetRef {
        source: Source::Path {
            path: path.to_path_buf(),
        },
        file: None,
        split: None,
        format: DataFormat::Csv,
        rows: rows.map(|r| RowRange::parse(r).unwrap()),
        explode,
    }
}

#[test]
fn row_ranges_and_exploded_lists_pick_the_examples() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ten.csv");
    let mut s = String::from("instruction,input,output\n");
    for i in 0..10 {
        s += &format!("i{i},,o{i}\n");
    }
    std::fs::write(&p, &s).unwrap();
    let t = examples::select(
        &dataset(&p, Some("80%:"), None),
        read(&p, DataFormat::Csv).unwrap(),
    )
    .unwrap();
    let names: Vec<String> = t.rows.iter().map(|r| text(r, "instruction")).collect();
    assert_eq!(
        names,
        ["i8", "i9"],
        "the last 20 %: df[int(len(df) * 0.8):]"
    );

    let qa = d.path().join("qa.csv");
    std::fs::write(
        &qa,
        "article,question_answer,summary\nA,\"[(' Hvem?', ' Ola.'), (\"\"Hva er 'dugnad'?\"\", 'Arbeid.')]\",S\nB,\"[(' Når?', ' I dag.')]\",T\n",
    )
    .unwrap();
    let list = ListColumn {
        column: "question_answer".into(),
        into: vec!["question".into(), "answer".into()],
    };
    let t = examples::select(
        &dataset(&qa, None, Some(list.clone())),
        read(&qa, DataFormat::Csv).unwrap(),
    )
    .unwrap();
    let got: Vec<(String, String, String, String)> = t
        .rows
        .iter()
        .map(|r| {
            (
                text(r, "article"),
                text(r, "question"),
                text(r, "answer"),
                text(r, "item"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("A".into(), " Hvem?".into(), " Ola.".into(), "0".into()),
            (
                "A".into(),
                "Hva er 'dugnad'?".into(),
                "Arbeid.".into(),
                "1".into()
            ),
            ("B".into(), " Når?".into(), " I dag.".into(), "0".into()),
        ]
    );

    std::fs::write(
        &qa,
        "article,question_answer,summary\nA,\"[(' Hvem?', ' Ola.'\",S\n",
    )
    .unwrap();
    let msg = examples::select(
        &dataset(&qa, None, Some(list)),
        read(&qa, DataFormat::Csv).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("qa.csv") && msg.contains("row 1, column `question_answer`"),
        "{msg}"
    );
}

#[test]
fn a_seeded_sample_is_the_same_draw_every_time_in_file_order() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("hundred.csv");
    let mut s = String::from("x\n");
    for i in 0..100 {
        s += &format!("{i}\n");
    }
    std::fs::write(&p, &s).unwrap();
    let t = read(&p, DataFormat::Csv).unwrap();
    let draw = |seed| -> Vec<u32> {
        examples::sample(&t, 10, seed)
            .rows
            .iter()
            .map(|r| text(r, "x").parse().unwrap())
            .collect()
    };
    let a = draw(7);
    assert_eq!(a.len(), 10);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "file order: {a:?}");
    assert_eq!(a, draw(7), "same seed, same examples");
    assert_ne!(a, draw(8), "another seed, another draw");
    assert_eq!(examples::sample(&t, 500, 1).rows.len(), 100);
}
