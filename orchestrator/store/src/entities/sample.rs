//! `samples`: one example's input, output, reference and scores; unique on (run, idx).

use sea_orm::entity::prelude::*;

/// A sample.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "samples")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub run_id: i64,
    pub idx: i64,
    pub shard: i32,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub output: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reference: Option<String>,
    /// Task-specific JSON: log-likelihoods, perplexities, groups, per-sample scores.
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub worker: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// `data` as JSON (`null` where it cannot be read).
    pub fn data_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_default()
    }

    /// The text of `data`'s `key`, when it is a string (e.g. `source`).
    pub fn data_text(&self, key: &str) -> Option<String> {
        self.data_json().get(key)?.as_str().map(str::to_string)
    }

    /// `data` with `add`'s keys set (replacing them), as stored text.
    pub fn data_merged(&self, add: &serde_json::Map<String, serde_json::Value>) -> String {
        let mut data = match self.data_json() {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        data.extend(add.clone());
        serde_json::Value::Object(data).to_string()
    }
}
