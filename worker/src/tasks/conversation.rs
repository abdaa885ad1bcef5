//! Prompts as conversations through the model's chat template (a setting's
//! `chat_template = true`), as lm-evaluation-harness's `--apply_chat_template` builds them: the
//! setting's system prompt as the system turn; the few-shot examples either written into the
//! one user turn before the prompt, or (`fewshot_as_multiturn`) as alternating user and
//! assistant turns; then the prompt as the last user turn and the assistant's opening.

use chat::{ChatTemplate, Message};
use spec::TaskSpec;

use super::fewshot::{self, Shots};
use super::{BatchOptions, TaskError};

/// How a run's prompts become conversations.
#[derive(Debug, Clone)]
pub struct ChatPrompting {
    /// The model's template.
    pub template: ChatTemplate,
    /// The system turn, if any.
    pub system_prompt: Option<String>,
    /// Few-shot examples as turns of their own.
    pub fewshot_as_multiturn: bool,
}

impl ChatPrompting {
    /// The chat template of the model in `dir`, as lm-eval's flags ask for it
    /// (`--apply_chat_template`, `--system_instruction`, `--fewshot_as_multiturn`).
    pub fn of_model_dir(
        dir: &std::path::Path,
        system_prompt: Option<String>,
        fewshot_as_multiturn: bool,
    ) -> Result<ChatPrompting, chat::ChatError> {
        let template = ChatTemplate::from_dir(dir)?.ok_or_else(|| chat::ChatError::File {
            path: dir.to_path_buf(),
            message: "no chat template here (no chat_template.jinja, no `chat_template` in tokenizer_config.json)\n  fix: name the folder of an instruction-tuned model".into(),
        })?;
        Ok(ChatPrompting {
            template,
            system_prompt,
            fewshot_as_multiturn,
        })
    }

    /// The turns of example `idx` whose filled template is `prompt`, and the pool rows shown.
    pub fn messages(
        &self,
        shots: Option<&Shots>,
        task: &TaskSpec,
        idx: usize,
        prompt: String,
    ) -> Result<(Vec<Message>, Option<Vec<usize>>), TaskError> {
        let mut messages: Vec<Message> = self
            .system_prompt
            .iter()
            .map(|s| Message::new("system", s.clone()))
            .collect();
        let shown = match (shots, self.fewshot_as_multiturn) {
            (Some(s), true) => {
                let (pairs, rows) = s.pairs(task, idx)?;
                for (question, answer) in pairs {
                    messages.push(Message::new("user", question));
                    messages.push(Message::new("assistant", answer));
                }
                messages.push(Message::new("user", prompt));
                Some(rows)
            }
            (shots, _) => {
                let (text, rows) = fewshot::prefixed(shots, task, idx, prompt)?;
                messages.push(Message::new("user", text));
                rows
            }
        };
        Ok((messages, shown))
    }
}

/// The prompt of example `idx` whose filled template is `prompt` as the model reads it: with
/// the few-shot examples, through the chat template when the setting asks for it; and the
/// pool rows shown.
pub fn prompt(
    opts: &BatchOptions,
    task: &TaskSpec,
    idx: usize,
    prompt: String,
) -> Result<(String, Option<Vec<usize>>), TaskError> {
    let Some(chat) = &opts.chat else {
        return fewshot::prefixed(opts.shots.as_ref(), task, idx, prompt);
    };
    let (messages, shown) = chat.messages(opts.shots.as_ref(), task, idx, prompt)?;
    let text = chat
        .template
        .render(&messages, true)
        .map_err(|e| TaskError::Request(format!("example {idx}: {e}")))?;
    Ok((text, shown))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::data::{Row, Table};

    const CHATML: &str = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

    fn task() -> TaskSpec {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.toml");
        std::fs::write(
            &path,
            "name = \"t\"\nversion = 1\nkind = \"generation\"\nprimary_metric = \"bleu\"\nmetrics = [\"bleu\"]\ntemplate = \"Q: {q}\"\n[dataset]\nsource = \"path:x.csv\"\n[fields]\nreference = \"a\"\n",
        )
        .unwrap();
        TaskSpec::load(&path).unwrap()
    }

    fn shots() -> Shots {
        let rows = (0..3)
            .map(|i| {
                let mut row = Row::new();
                row.insert("q".into(), serde_json::json!(format!("q{i}")));
                row.insert("a".into(), serde_json::json!(format!("a{i}")));
                row
            })
            .collect();
        Shots {
            pool: Arc::new(Table {
                columns: vec!["q".into(), "a".into()],
                rows,
                path: "pool.csv".into(),
            }),
            k: 2,
            seed: 5,
        }
    }

    fn chat(multiturn: bool) -> ChatPrompting {
        ChatPrompting {
            template: ChatTemplate::new(CHATML, "t.jinja", BTreeMap::new()),
            system_prompt: Some("Svar kort.".into()),
            fewshot_as_multiturn: multiturn,
        }
    }

    #[test]
    fn few_shot_examples_go_into_the_user_turn_or_become_turns_of_their_own() {
        let s = shots();
        let rows = s.draw(0);
        let (single, shown) = chat(false)
            .messages(Some(&s), &task(), 0, "Q: hva?".into())
            .unwrap();
        assert_eq!(shown.as_deref(), Some(rows.as_slice()));
        assert_eq!(single.len(), 2, "{single:?}");
        assert_eq!(
            single[1].content,
            format!(
                "Q: q{} a{}\n\nQ: q{} a{}\n\nQ: hva?",
                rows[0], rows[0], rows[1], rows[1]
            )
        );
        let (turns, _) = chat(true)
            .messages(Some(&s), &task(), 0, "Q: hva?".into())
            .unwrap();
        let roles: Vec<&str> = turns.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "user", "assistant", "user"]
        );
        assert_eq!(turns[1].content, format!("Q: q{}", rows[0]));
        assert_eq!(turns[2].content, format!("a{}", rows[0]));
        assert_eq!(turns[5].content, "Q: hva?");
    }
}
