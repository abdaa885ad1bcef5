//! Tags and notes on sweeps and runs: what people say about them. A tag is one word, once per
//! sweep or run; a note is free text, kept with its author and time in the order written.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::entities::{annotation, run};
use super::{Store, StoreError, now};

const TAG: &str = "tag";
const NOTE: &str = "note";

/// What an annotation is about: a sweep (by name) or a run (`run:ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A sweep, by name.
    Sweep(String),
    /// A run, by id.
    Run(i64),
}

impl Target {
    /// `run:ID`, or else a sweep name.
    pub fn parse(s: &str) -> Target {
        match s.strip_prefix("run:").and_then(|i| i.parse().ok()) {
            Some(id) => Target::Run(id),
            None => Target::Sweep(s.to_string()),
        }
    }
}

/// A note with who wrote it and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The text.
    pub text: String,
    /// Who wrote it (a dashboard user, or the CLI's `$USER`).
    pub author: Option<String>,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The tags and notes of one sweep or run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Annotations {
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
}

/// A tag is one word: letters, digits and `- _ . : /`, at most 64 characters.
pub fn check_tag(tag: &str) -> Result<(), StoreError> {
    let ok = !tag.is_empty()
        && tag.chars().count() <= 64
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Filter(format!(
            "`{tag}` is not a tag: a tag is one word of letters, digits and - _ . : / (at most 64 characters)"
        )))
    }
}

/// The row an annotation belongs to, once it is known to exist.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Sweep(i64),
    Run(i64),
}

impl Owner {
    /// Its annotations.
    fn rows(self) -> sea_orm::Select<annotation::Entity> {
        let q = annotation::Entity::find();
        match self {
            Owner::Sweep(id) => q.filter(annotation::Column::SweepId.eq(id)),
            Owner::Run(id) => q.filter(annotation::Column::RunId.eq(id)),
        }
    }

    /// (sweep_id, run_id) of a new annotation.
    fn columns(self) -> (Option<i64>, Option<i64>) {
        match self {
            Owner::Sweep(id) => (Some(id), None),
            Owner::Run(id) => (None, Some(id)),
        }
    }
}

impl Store {
    /// The owner `target` names; an error naming it when it does not exist.
    async fn owner(&self, target: &Target) -> Result<Owner, StoreError> {
        match target {
            Target::Sweep(name) => Ok(Owner::Sweep(self.sweep_by_name(name).await?.id)),
            Target::Run(id) => {
                run::Entity::find_by_id(*id)
                    .one(&self.db)
                    .await?
                    .ok_or(StoreError::NoRun(*id))?;
                Ok(Owner::Run(*id))
            }
        }
    }

    /// Tag `target` with `tags`; returns how many it did not have.
    pub async fn add_tags(
        &self,
        target: &Target,
        tags: &[String],
        author: Option<&str>,
    ) -> Result<usize, StoreError> {
        for t in tags {
            check_tag(t)?;
        }
        let owner = self.owner(target).await?;
        let (sweep, run) = owner.columns();
        let txn = super::begin(&self.db).await?;
        let have: Vec<String> = owner
            .rows()
            .filter(annotation::Column::Kind.eq(TAG))
            .all(&txn)
            .await?
            .into_iter()
            .map(|a| a.text)
            .collect();
        let mut added = 0;
        for t in tags {
            if have.contains(t) || tags[..added].contains(t) {
                continue;
            }
            annotation::ActiveModel {
                sweep_id: Set(sweep),
                run_id: Set(run),
                kind: Set(TAG.into()),
                text: Set(t.clone()),
                author: Set(author.map(str::to_string)),
                created_at: Set(now()),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            added += 1;
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Take `tags` off `target`; returns how many it had.
    pub async fn remove_tags(&self, target: &Target, tags: &[String]) -> Result<u64, StoreError> {
        let ids: Vec<i64> = self
            .owner(target)
            .await?
            .rows()
            .filter(annotation::Column::Kind.eq(TAG))
            .filter(annotation::Column::Text.is_in(tags.to_vec()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        let r = annotation::Entity::delete_many()
            .filter(annotation::Column::Id.is_in(ids))
            .exec(&self.db)
            .await?;
        Ok(r.rows_affected)
    }

    /// Add a note to `target`.
    pub async fn add_note(
        &self,
        target: &Target,
        text: &str,
        author: Option<&str>,
    ) -> Result<(), StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::Filter("a note needs some text".into()));
        }
        let (sweep, run) = self.owner(target).await?.columns();
        annotation::ActiveModel {
            sweep_id: Set(sweep),
            run_id: Set(run),
            kind: Set(NOTE.into()),
            text: Set(text.to_string()),
            author: Set(author.map(str::to_string)),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The tags and notes of `target`.
    pub async fn annotations(&self, target: &Target) -> Result<Annotations, StoreError> {
        let rows = self
            .owner(target)
            .await?
            .rows()
            .order_by_asc(annotation::Column::Id)
            .all(&self.db)
            .await?;
        let mut out = Annotations::default();
        for a in rows {
            if a.kind == TAG {
                out.tags.push(a.text);
            } else {
                out.notes.push(Note {
                    text: a.text,
                    author: a.author,
                    at: a.created_at,
                });
            }
        }
        out.tags.sort();
        Ok(out)
    }

    /// The tags of each of `sweeps` (sorted).
    pub async fn sweep_tags(
        &self,
        sweeps: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        self.tags_of(annotation::Column::SweepId, |a| a.sweep_id, sweeps)
            .await
    }

    /// The tags of each of `runs` (sorted).
    pub async fn run_tags(&self, runs: &[i64]) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        self.tags_of(annotation::Column::RunId, |a| a.run_id, runs)
            .await
    }

    /// The tags of the owners `ids` in column `col` (`owner` reads it from a row).
    async fn tags_of(
        &self,
        col: annotation::Column,
        owner: fn(&annotation::Model) -> Option<i64>,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(1000) {
            let rows = annotation::Entity::find()
                .filter(annotation::Column::Kind.eq(TAG))
                .filter(col.is_in(chunk.to_vec()))
                .order_by_asc(annotation::Column::Text)
                .all(&self.db)
                .await?;
            for a in rows {
                if let Some(id) = owner(&a) {
                    out.entry(id).or_default().push(a.text);
                }
            }
        }
        Ok(out)
    }

    /// The tags of each of `runs` of sweep `sweep` with the sweep's own, sorted, once each
    /// (what exports carry).
    pub async fn run_and_sweep_tags(
        &self,
        sweep: i64,
        runs: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        let mut by_run = self.run_tags(runs).await?;
        let of_sweep = self
            .sweep_tags(&[sweep])
            .await?
            .remove(&sweep)
            .unwrap_or_default();
        Ok(runs
            .iter()
            .map(|r| {
                let mut tags = by_run.remove(r).unwrap_or_default();
                tags.extend(of_sweep.iter().cloned());
                tags.sort();
                tags.dedup();
                (*r, tags)
            })
            .collect())
    }

    /// Ids of the sweeps tagged `tag`.
    pub async fn sweeps_tagged(&self, tag: &str) -> Result<Vec<i64>, StoreError> {
        Ok(annotation::Entity::find()
            .filter(annotation::Column::Kind.eq(TAG))
            .filter(annotation::Column::Text.eq(tag))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|a| a.sweep_id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_single_words_and_targets_parse() {
        for good in ["baseline", "paper-v2", "lr:3e-4", "team/nlp", "ønsket"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "two words", "a,b", &"x".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(Target::parse("run:12"), Target::Run(12));
        assert_eq!(Target::parse("run:x"), Target::Sweep("run:x".into()));
        assert_eq!(Target::parse("bias"), Target::Sweep("bias".into()));
    }
}
