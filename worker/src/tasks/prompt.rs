//! Prompts from a task's templates and an example's fields.

use spec::{TaskSpec, Template};

use super::TaskError;
use crate::data::{Row, text};

/// `template` filled from a row (`{column}` → the cell's text, filters applied).
pub fn fill(template: &str, row: &Row) -> Result<String, TaskError> {
    Ok(parse(template)?.render(|c| text(row, c)))
}

/// A template, parsed.
pub fn parse(template: &str) -> Result<Template, TaskError> {
    Template::parse(template).map_err(|e| TaskError::Request(format!("template `{template}`: {e}")))
}

/// The task's prompt for a row: `template`, or the `template_when_empty` entry of the first
/// of its columns that is empty in this row (e.g. an instruction without input).
pub fn prompt(task: &TaskSpec, row: &Row) -> Result<String, TaskError> {
    let template = task.template.as_deref().ok_or_else(|| {
        TaskError::Request(format!("task `{}` has no prompt template", task.name))
    })?;
    let chosen = task
        .template_when_empty
        .iter()
        .find(|(column, _)| text(row, column).trim().is_empty())
        .map_or(template, |(_, t)| t.as_str());
    fill(chosen, row)
}

/// Words of the input the task limits, when over its limit (the example is not run).
pub fn over_limit(task: &TaskSpec, row: &Row) -> Option<usize> {
    let limit = task.input_limit.as_ref()?;
    let words = text(row, &limit.column).split_whitespace().count();
    (words as u64 > limit.max_words).then_some(words)
}

/// The columns the task's templates read.
pub fn columns(task: &TaskSpec) -> Vec<String> {
    let mut all: Vec<&str> = task.template.iter().map(String::as_str).collect();
    all.extend(task.template_when_empty.values().map(String::as_str));
    all.extend(task.zero_shot_template.as_deref());
    let mut out: Vec<String> = Vec::new();
    for t in all {
        if let Ok(t) = Template::parse(t) {
            for c in t.columns() {
                if !out.iter().any(|x| x == c) {
                    out.push(c.to_string());
                }
            }
        }
    }
    out.extend(task.input_limit.as_ref().map(|l| l.column.clone()));
    out
}
