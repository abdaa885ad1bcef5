//! Few-shot prompts, in lm-evaluation-harness's layout: `k` examples of the task's few-shot
//! pool, each written as its prompt, a space (the target delimiter) and its answer, joined by
//! a blank line (the few-shot delimiter), then a blank line and the example's own prompt.
//! The examples are drawn for each example with the run's seed and the example's index, so a
//! prompt is the same on any worker, in any shard and any batch.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use spec::manifest::FewShot;
use spec::{TaskKind, TaskSpec};

use super::{TaskError, classification, prompt};
use crate::data::{Row, Table, text};

/// A solved example: its prompt and its answer.
pub type Solved = (String, String);

/// The pool and how many of it go before each prompt.
#[derive(Debug, Clone)]
pub struct Shots {
    /// The task's `[fewshot]` examples.
    pub pool: Arc<Table>,
    /// Examples per prompt.
    pub k: usize,
    /// The run's seed.
    pub seed: u64,
}

impl Shots {
    /// The pool rows put before example `idx`'s prompt: `k` distinct ones, in the order drawn.
    pub fn draw(&self, idx: usize) -> Vec<usize> {
        let stream = (idx as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ stream);
        let n = self.pool.rows.len();
        rand::seq::index::sample(&mut rng, n, self.k.min(n)).into_vec()
    }

    /// The solved examples shown before example `idx`'s prompt, as (prompt, answer) pairs, and
    /// their pool rows.
    pub fn pairs(
        &self,
        task: &TaskSpec,
        idx: usize,
    ) -> Result<(Vec<Solved>, Vec<usize>), TaskError> {
        let rows = self.draw(idx);
        let pairs = rows
            .iter()
            .map(|&r| shot(task, &self.pool.rows[r], r))
            .collect::<Result<_, _>>()?;
        Ok((pairs, rows))
    }

    /// What goes before example `idx`'s prompt (ends with the few-shot delimiter), and the
    /// pool rows it shows.
    pub fn context(&self, task: &TaskSpec, idx: usize) -> Result<(String, Vec<usize>), TaskError> {
        let (pairs, rows) = self.pairs(task, idx)?;
        let mut out = String::new();
        for (question, answer) in pairs {
            out.push_str(&question);
            out.push_str(FewShot::TARGET_DELIMITER);
            out.push_str(&answer);
            out.push_str(FewShot::FEWSHOT_DELIMITER);
        }
        Ok((out, rows))
    }
}

/// `prompt` of example `idx` with its shots before it when there are any, and the pool rows
/// shown (for the sample's record).
pub fn prefixed(
    shots: Option<&Shots>,
    task: &TaskSpec,
    idx: usize,
    prompt: String,
) -> Result<(String, Option<Vec<usize>>), TaskError> {
    match shots {
        None => Ok((prompt, None)),
        Some(s) => {
            let (context, rows) = s.context(task, idx)?;
            Ok((context + &prompt, Some(rows)))
        }
    }
}

/// One pool row as a solved example: the prompt the task would give it, and its answer (the
/// reference of a generation task, the label word of a classification task).
fn shot(task: &TaskSpec, row: &Row, r: usize) -> Result<(String, String), TaskError> {
    let bad = |what: String| {
        TaskError::Request(format!(
            "few-shot example {r} of task `{}`: {what}",
            task.name
        ))
    };
    match task.kind {
        TaskKind::Generation => {
            let reference = task
                .fields
                .get("reference")
                .ok_or_else(|| bad("the task names no `reference` field".into()))?;
            Ok((prompt::prompt(task, row)?, text(row, reference)))
        }
        TaskKind::Classification => {
            let template = task
                .zero_shot_template
                .as_deref()
                .ok_or_else(|| bad("the task has no zero_shot_template".into()))?;
            let column = task.fields.get("label").map_or("label", String::as_str);
            let value = text(row, column);
            let word = classification::class_of(task, &value)
                .and_then(|c| task.label_words.get(c))
                .ok_or_else(|| bad(format!("`{value}` is not one of the task's labels")))?;
            Ok((prompt::fill(template, row)?, word.clone()))
        }
        other => Err(bad(format!(
            "{} tasks have no few-shot form",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Arc<Table> {
        Arc::new(Table {
            columns: vec!["q".into()],
            rows: (0..n)
                .map(|i| {
                    let mut row = Row::new();
                    row.insert("q".into(), serde_json::json!(format!("q{i}")));
                    row
                })
                .collect(),
            path: "pool.csv".into(),
        })
    }

    #[test]
    fn draws_are_distinct_seeded_and_per_example() {
        let s = Shots {
            pool: pool(50),
            k: 3,
            seed: 7,
        };
        let a = s.draw(4);
        assert_eq!(a.len(), 3);
        assert!(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
        assert_eq!(s.draw(4), a, "the same example draws the same shots");
        assert_ne!(s.draw(5), a, "another example draws others");
        let other_seed = Shots {
            seed: 8,
            ..s.clone()
        };
        assert_ne!(other_seed.draw(4), a);
        let small = Shots { pool: pool(2), ..s };
        assert_eq!(small.draw(0).len(), 2);
    }
}
