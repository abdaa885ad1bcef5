//! Expanding a sweep into its grid of cells.

use crate::sweep::Rule;
use crate::{AdapterRef, ModelRef, Setting, SweepSpec, TaskSpec};

/// One (model, adapter | none, task, setting, seed) of a sweep.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    /// The model.
    pub model: &'a ModelRef,
    /// The adapter, or `None` for the base model.
    pub adapter: Option<&'a AdapterRef>,
    /// The task (dataset overrides applied).
    pub task: &'a TaskSpec,
    /// The setting.
    pub setting: &'a Setting,
    /// The seed.
    pub seed: u64,
}

impl Cell<'_> {
    /// A readable key, unique within the sweep: `model[+adapter]/task/setting/seed`.
    pub fn key(&self) -> String {
        let model = match self.adapter {
            Some(a) => format!("{}+{}", self.model.name, a.name),
            None => self.model.name.clone(),
        };
        format!(
            "{model}/{}/{}/seed={}",
            self.task.name, self.setting.name, self.seed
        )
    }

    fn matches(&self, r: &Rule) -> bool {
        let adapter = self.adapter.map_or("none", |a| a.name.as_str());
        r.model
            .as_ref()
            .is_none_or(|m| m.get_ref() == &self.model.name)
            && r.adapter.as_ref().is_none_or(|a| a.get_ref() == adapter)
            && r.task
                .as_ref()
                .is_none_or(|t| t.get_ref() == &self.task.name)
            && r.setting
                .as_ref()
                .is_none_or(|s| s.get_ref() == &self.setting.name)
            && r.seed.is_none_or(|s| s == self.seed)
    }
}

/// The cells of a sweep, in a stable order. An adapter (or a model) that declares its
/// tasks is paired only with those. With `include` rules, only cells matching one
/// of them are kept; cells matching an `exclude` rule are dropped.
pub fn expand(sweep: &SweepSpec) -> Vec<Cell<'_>> {
    let mut cells = Vec::new();
    for model in &sweep.models {
        let adapters = std::iter::once(None).chain(model.adapters.iter().map(Some));
        for adapter in adapters {
            for task in sweep.tasks.iter().filter(|t| model.runs(adapter, &t.name)) {
                for setting in &sweep.settings {
                    for &seed in &sweep.seeds {
                        let cell = Cell {
                            model,
                            adapter,
                            task,
                            setting,
                            seed,
                        };
                        let included = sweep.include.is_empty()
                            || sweep.include.iter().any(|r| cell.matches(r));
                        let excluded = sweep.exclude.iter().any(|r| cell.matches(r));
                        if included && !excluded {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
    }
    cells
}
