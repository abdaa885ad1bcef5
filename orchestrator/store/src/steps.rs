//! Steps of `chain` tasks, written as each is computed so a resumed job skips them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::OnConflict};

use super::entities::chain_step;
use super::{Store, StoreError, now};

/// One step's prompt and output for one example (and item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    /// Example index within the run.
    pub idx: i64,
    /// Position of the step in the task.
    pub step: i32,
    /// Position of the item (0 for steps not run per item).
    pub item: i32,
    /// The prompt.
    pub prompt: String,
    /// The model's output.
    pub output: String,
}

impl Store {
    /// Store steps of `run_id`; a step already stored for the same (example, step, item) is
    /// kept as it is.
    pub async fn insert_steps(&self, run_id: i64, steps: &[NewStep]) -> Result<(), StoreError> {
        if steps.is_empty() {
            return Ok(());
        }
        let t = now();
        let rows = steps.iter().map(|s| chain_step::ActiveModel {
            run_id: Set(run_id),
            idx: Set(s.idx),
            step: Set(s.step),
            item: Set(s.item),
            prompt: Set(super::rows::storable(&s.prompt)),
            output: Set(super::rows::storable(&s.output)),
            created_at: Set(t),
            ..Default::default()
        });
        let res = chain_step::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    chain_step::Column::RunId,
                    chain_step::Column::Idx,
                    chain_step::Column::Step,
                    chain_step::Column::Item,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await;
        match res {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stored steps of examples `start..end` of `run_id`, by example, step and item.
    pub async fn steps(
        &self,
        run_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<NewStep>, StoreError> {
        Ok(chain_step::Entity::find()
            .filter(chain_step::Column::RunId.eq(run_id))
            .filter(chain_step::Column::Idx.gte(start))
            .filter(chain_step::Column::Idx.lt(end))
            .order_by_asc(chain_step::Column::Idx)
            .order_by_asc(chain_step::Column::Step)
            .order_by_asc(chain_step::Column::Item)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| NewStep {
                idx: m.idx,
                step: m.step,
                item: m.item,
                prompt: m.prompt,
                output: m.output,
            })
            .collect())
    }
}
