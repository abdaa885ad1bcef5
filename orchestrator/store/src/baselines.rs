//! Baselines: reference values (the paper's, recomputed from released outputs, or any other
//! source) that runs are compared with. Imported from CSV; unique on (task, model, setting,
//! metric, source), so importing again updates values instead of duplicating them.

use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::entities::baseline;
use super::{Store, StoreError};

/// A baseline to store.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBaseline {
    /// Task name.
    pub task: String,
    /// Model name as the source writes it (matched case-insensitively with run models).
    pub model: String,
    /// Setting, e.g. `zero-shot`.
    #[serde(default)]
    pub setting: String,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// How many examples it was computed on (empty: not recorded).
    #[serde(default)]
    pub n: Option<i64>,
    /// The identity of those examples ([`spec::examples`]; empty: not recorded).
    #[serde(default)]
    pub examples: Option<String>,
    /// Where the value comes from.
    pub source: String,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

/// Parse a baselines CSV (header `task,model,setting,metric,value,n,examples,source,note`;
/// `setting`, `n`, `examples` and `note` may be empty or absent). Errors name the line and the
/// problem.
pub fn parse_csv(text: &str, origin: &str) -> Result<Vec<NewBaseline>, String> {
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = r
        .headers()
        .map_err(|e| format!("{origin}: cannot read the header: {e}"))?
        .clone();
    for need in ["task", "model", "metric", "value", "source"] {
        if !headers.iter().any(|h| h == need) {
            return Err(format!(
                "{origin}: no column `{need}`; the header must be task,model,setting,metric,value,n,examples,source,note"
            ));
        }
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{origin}, line {line}: {e}"))?;
        let b: NewBaseline = rec
            .deserialize(Some(&headers))
            .map_err(|e| format!("{origin}, line {line}: {e}"))?;
        if b.n.is_some_and(|n| n < 1) {
            return Err(format!(
                "{origin}, line {line}: n must be a whole number ≥ 1 (or empty)"
            ));
        }
        if !b.value.is_finite() {
            return Err(format!(
                "{origin}, line {line}: value is not a finite number"
            ));
        }
        for (k, v) in [
            ("task", &b.task),
            ("model", &b.model),
            ("metric", &b.metric),
            ("source", &b.source),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{origin}, line {line}: `{k}` is empty"));
            }
        }
        out.push(b);
    }
    Ok(out)
}

impl Store {
    /// Insert baselines, updating the value and note of ones already stored; returns how
    /// many rows were written.
    pub async fn import_baselines(&self, rows: &[NewBaseline]) -> Result<usize, StoreError> {
        let now = chrono::Utc::now();
        for chunk in rows.chunks(500) {
            let models = chunk.iter().map(|b| baseline::ActiveModel {
                task: Set(b.task.clone()),
                model: Set(b.model.clone()),
                setting: Set(b.setting.clone()),
                metric: Set(b.metric.clone()),
                value: Set(b.value),
                n: Set(b.n),
                examples: Set(b.examples.clone().filter(|e| !e.trim().is_empty())),
                source: Set(b.source.clone()),
                note: Set(b.note.clone()),
                created_at: Set(now),
                ..Default::default()
            });
            baseline::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([
                        baseline::Column::Task,
                        baseline::Column::Model,
                        baseline::Column::Setting,
                        baseline::Column::Metric,
                        baseline::Column::Source,
                    ])
                    .update_columns([
                        baseline::Column::Value,
                        baseline::Column::N,
                        baseline::Column::Examples,
                        baseline::Column::Note,
                    ])
                    .to_owned(),
                )
                .exec(&self.db)
                .await?;
        }
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_errors_name_the_line() {
        let ok = "task,model,setting,metric,value,source,note\nno-crows-pairs,NorGPT-369M,zero-shot,bias_paper,0.4711,paper,\n";
        assert_eq!(parse_csv(ok, "b.csv").unwrap()[0].value, 0.4711);
        let bad = ok.replace("0.4711", "høy");
        let e = parse_csv(&bad, "b.csv").unwrap_err();
        assert!(e.contains("b.csv, line 2"), "{e}");
        let e = parse_csv("task,model\n", "b.csv").unwrap_err();
        assert!(e.contains("no column `metric`"), "{e}");
    }
}
