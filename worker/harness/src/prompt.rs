//! A document's prompt as lm-eval's `fewshot_context` builds it: turns (lm-eval's `Message`:
//! the system instruction and description, each few-shot question and answer, the document's
//! question and generation prefix), written out as plain text, or rendered through the
//! model's chat template (`--apply_chat_template`): the few-shot examples as turns of their own
//! (`--fewshot_as_multiturn`) or folded into one user turn.

use serde_json::Value as Json;

use crate::hooks::py_space;

/// A turn of a prompt: in plain text, its content then its delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// Its text.
    pub content: String,
    /// What follows it in plain text (a target or few-shot delimiter).
    delimiter: String,
}

impl Turn {
    fn new(role: &'static str, content: impl Into<String>, delimiter: impl Into<String>) -> Turn {
        Turn {
            role,
            content: content.into(),
            delimiter: delimiter.into(),
        }
    }
}

/// Renders `(role, content)` turns through a model's chat template: with the assistant's turn
/// opened (`true`, transformers' `add_generation_prompt`), else continuing the final turn
/// (`continue_final_message`). Errors are the template's.
pub type RenderChat<'a> = dyn Fn(&[(&str, &str)], bool) -> Result<String, String> + 'a;

/// lm-eval's `--apply_chat_template`, with `--system_instruction` and
/// `--fewshot_as_multiturn`.
pub struct Chat<'a> {
    /// The system instruction (before the task's description).
    pub system: Option<&'a str>,
    /// Few-shot examples as user and assistant turns, not folded into one user turn.
    pub multiturn: bool,
    /// The model's template.
    pub render: &'a RenderChat<'a>,
}

impl std::fmt::Debug for Chat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("system", &self.system)
            .field("multiturn", &self.multiturn)
            .finish_non_exhaustive()
    }
}

/// The system turn: the instruction and the task's description joined by the few-shot
/// delimiter (none when both are empty).
pub(crate) fn system(instruction: Option<&str>, description: &str, delim: &str) -> Vec<Turn> {
    let text = maybe_delimit(instruction, description, delim);
    if text.is_empty() {
        vec![]
    } else {
        vec![Turn::new("system", text, "")]
    }
}

/// `build_qa_turn`: the question, with the target delimiter where lm-eval puts one, then the
/// answer (`c[a]` for an index, the first of a list) after the generation prefix, or the
/// prefix alone.
pub(crate) fn qa_turn(
    q: &Json,
    c: Option<&[Json]>,
    a: Option<&Json>,
    prefix: Option<&str>,
    target_delim: &str,
    fewshot_delim: &str,
) -> Result<Vec<Turn>, String> {
    let q = q
        .as_str()
        .ok_or_else(|| format!("the prompt is {q}, not text"))?;
    let has_answer = a.is_some_and(|a| !a.is_null() && a.as_str() != Some(""));
    let prefix = prefix.filter(|p| !p.is_empty());
    let needs = |p: &str| -> bool { requires_delimiter(q, p) };
    let delim = if (has_answer && prefix.is_none()) || prefix.is_some_and(needs) {
        target_delim
    } else {
        ""
    };
    let mut turns = vec![Turn::new("user", q, delim)];
    if let Some(a) = a.filter(|_| has_answer) {
        let answer = match (c.filter(|c| !c.is_empty()), a) {
            (Some(c), Json::Number(n)) if n.is_i64() || n.is_u64() => {
                index(c, n.as_i64().unwrap_or_default())?
            }
            (Some(c), Json::Bool(b)) => index(c, i64::from(*b))?,
            (_, Json::Array(l)) => l.first().ok_or("the answer is an empty list")?,
            (_, a) => a,
        };
        let answer = answer
            .as_str()
            .ok_or_else(|| format!("the answer is {answer}, not text"))?;
        turns.push(Turn::new(
            "assistant",
            maybe_delimit(prefix, answer, " "),
            fewshot_delim,
        ));
    } else if let Some(p) = prefix {
        turns.push(Turn::new("assistant", p, ""));
    }
    Ok(turns)
}

/// The turns as the model reads them: plain text, or through `chat` (opening the assistant's
/// turn unless `prefix` begins it).
pub(crate) fn render(
    turns: Vec<Turn>,
    chat: Option<&Chat>,
    prefix: Option<&str>,
) -> Result<String, String> {
    let Some(chat) = chat else {
        return Ok(turns
            .iter()
            .map(|t| format!("{}{}", t.content, t.delimiter))
            .collect());
    };
    let turns = if chat.multiturn {
        turns
    } else {
        single_turn(turns)
    };
    let pairs: Vec<(&str, &str)> = turns.iter().map(|t| (t.role, t.content.as_str())).collect();
    (chat.render)(&pairs, prefix.is_none_or(str::is_empty))
        .map_err(|e| format!("the chat template: {e}"))
}

/// `multiturn_to_singleturn`: everything after the system turn as one user turn in plain text,
/// except a final assistant turn (the generation prefix), which stays its own.
fn single_turn(mut turns: Vec<Turn>) -> Vec<Turn> {
    let system = (turns.first().is_some_and(|t| t.role == "system")).then(|| turns.remove(0));
    let last = turns
        .last()
        .is_some_and(|t| t.role == "assistant")
        .then(|| turns.pop())
        .flatten();
    if let Some(t) = turns.last_mut() {
        t.delimiter.clear();
    }
    let user: String = turns
        .iter()
        .map(|t| format!("{}{}", t.content, t.delimiter))
        .collect();
    system
        .into_iter()
        .chain([Turn::new("user", user, "")])
        .chain(last.map(|t| Turn::new("assistant", t.content, "")))
        .collect()
}

/// `choices[i]`, negative indices from the end as in Python.
pub(crate) fn index(choices: &[Json], i: i64) -> Result<&Json, String> {
    let at = if i < 0 { choices.len() as i64 + i } else { i };
    usize::try_from(at)
        .ok()
        .and_then(|at| choices.get(at))
        .ok_or_else(|| {
            format!(
                "choice index {i} is out of range for {} choices",
                choices.len()
            )
        })
}

/// lm-eval's `requires_delimiter`: neither side has whitespace at the join.
fn requires_delimiter(prefix: &str, suffix: &str) -> bool {
    match (prefix.chars().last(), suffix.chars().next()) {
        (None, _) => false,
        (Some(p), Some(s)) => !(py_space(p) || py_space(s)),
        (Some(p), None) => !py_space(p),
    }
}

/// lm-eval's `maybe_delimit`.
fn maybe_delimit(prefix: Option<&str>, suffix: &str, delim: &str) -> String {
    match prefix {
        None | Some("") => suffix.to_string(),
        Some(p) if suffix.is_empty() => p.to_string(),
        Some(p) => {
            let join = !(p.chars().last().is_some_and(py_space)
                || suffix.chars().next().is_some_and(py_space));
            if join {
                format!("{p}{delim}{suffix}")
            } else {
                format!("{p}{suffix}")
            }
        }
    }
}

/// lm-eval's `ends_with_whitespace`.
pub(crate) fn ends_with_whitespace(s: &str) -> bool {
    s.chars().last().is_some_and(py_space)
}
