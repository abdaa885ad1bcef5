//! Chat templates, rendered byte for byte as Hugging Face transformers'
//! `apply_chat_template(tokenize=False)` renders them.
//!
//! A model's template is the `chat_template` of its `tokenizer_config.json` (a string, or a
//! list of named templates of which `default` is taken) or its `chat_template.jinja`. It is
//! Jinja, run here by `minijinja` in the environment transformers builds: blocks trimmed and
//! stripped on the left, loop controls, Python's string methods (`strip`, `split`,
//! `startswith`, …), and transformers' additions: `raise_exception(message)`, `tojson` as
//! Python's `json.dumps` (no HTML escaping, `indent`, `separators`, `sort_keys`),
//! `strftime_now(format)`, `namespace(...)` and `dict(...)`. The context holds `messages`,
//! `add_generation_prompt`, `tools` and `documents` (none) and the tokenizer's special tokens
//! (`bos_token`, `eos_token`, …).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, Value, ValueKind};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant` (templates may know others).
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl Message {
    /// A turn of `role` saying `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Why a chat template could not be read or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The template file could not be read or is not what transformers reads.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The template is not valid Jinja.
    #[error("{path}: the chat template is not valid Jinja: {message}")]
    Syntax {
        /// Where the template came from.
        path: PathBuf,
        /// minijinja's description, with the line.
        message: String,
    },
    /// The template called `raise_exception` (e.g. roles that do not alternate).
    #[error("the chat template refused the conversation: {0}")]
    Raised(String),
    /// Rendering failed otherwise.
    #[error("the chat template failed: {0}")]
    Render(String),
    /// The final turn cannot be continued: the template drops it, or reads no `content`.
    #[error("the chat template cannot continue the final turn: {0}")]
    Continue(String),
}

impl ChatError {
    /// Whether transformers would raise jinja2's `TemplateError` here (the template's own
    /// failure), which lm-eval answers by dropping the system turn and rendering again.
    pub fn is_template_error(&self) -> bool {
        matches!(
            self,
            ChatError::Syntax { .. } | ChatError::Raised(_) | ChatError::Render(_)
        )
    }
}

/// A model's chat template with the special tokens it may use.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// Where it was read from (for errors and records).
    pub path: PathBuf,
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token`, … as strings.
    pub special_tokens: BTreeMap<String, String>,
}

/// The special tokens transformers puts into a template's context.
const SPECIAL_TOKENS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// A token as tokenizer_config.json writes it: a string or an `AddedToken` object.
fn token_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl ChatTemplate {
    /// A template from its source, with the given special tokens.
    pub fn new(
        source: impl Into<String>,
        path: impl Into<PathBuf>,
        special_tokens: BTreeMap<String, String>,
    ) -> ChatTemplate {
        ChatTemplate {
            source: source.into(),
            path: path.into(),
            special_tokens,
        }
    }

    /// The template of the model in `dir`, as transformers finds it: `chat_template.jinja`
    /// first, then tokenizer_config.json's `chat_template`. `None` when the model has none.
    pub fn from_dir(dir: &Path) -> Result<Option<ChatTemplate>, ChatError> {
        let config_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ChatError::File {
                path: config_path.clone(),
                message: format!("not valid JSON: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
            Err(e) => {
                return Err(ChatError::File {
                    path: config_path,
                    message: e.to_string(),
                });
            }
        };
        let special_tokens = SPECIAL_TOKENS
            .iter()
            .filter_map(|k| Some((k.to_string(), token_text(config.get(*k)?)?)))
            .collect();
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let source = std::fs::read_to_string(&jinja).map_err(|e| ChatError::File {
                path: jinja.clone(),
                message: e.to_string(),
            })?;
            return Ok(Some(ChatTemplate::new(source, jinja, special_tokens)));
        }
        let source = match config.get("chat_template") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
                .map(str::to_string)
                .ok_or_else(|| ChatError::File {
                    path: config_path.clone(),
                    message: "`chat_template` lists named templates but none called `default`"
                        .into(),
                })?,
            Some(_) => {
                return Err(ChatError::File {
                    path: config_path,
                    message: "`chat_template` is neither a string nor a list of named templates"
                        .into(),
                });
            }
        };
        Ok(Some(ChatTemplate::new(source, config_path, special_tokens)))
    }

    /// Hex SHA-256 of the template's source: what a run records of it.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.source.as_bytes()))
    }

    /// Check that the template is valid Jinja.
    pub fn check(&self) -> Result<(), ChatError> {
        let env = environment();
        env.template_from_str(&self.source)
            .map(|_| ())
            .map_err(|e| self.syntax(e))
    }

    fn syntax(&self, e: minijinja::Error) -> ChatError {
        ChatError::Syntax {
            path: self.path.clone(),
            message: describe(&e),
        }
    }

    /// `messages` rendered, with the assistant's opening when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let env = environment();
        let template = env
            .template_from_str(&self.source)
            .map_err(|e| self.syntax(e))?;
        let mut context: BTreeMap<&str, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.as_str(), Value::from(v.as_str())))
            .collect();
        context.insert("messages", Value::from(Serde(messages)));
        context.insert("add_generation_prompt", Value::from(add_generation_prompt));
        context.insert("tools", Value::from(()));
        context.insert("documents", Value::from(()));
        template.render(context).map_err(|e| match e.kind() {
            ErrorKind::InvalidOperation if raised(&e).is_some() => {
                ChatError::Raised(raised(&e).unwrap_or_default())
            }
            _ => ChatError::Render(describe(&e)),
        })
    }
}

impl ChatTemplate {
    /// `messages` rendered so that the model continues the final turn, as transformers'
    /// `apply_chat_template(continue_final_message=True)`: the final turn's text marked, the
    /// conversation rendered without a generation prompt, and cut where the mark is.
    pub fn render_continuing(&self, messages: &[Message]) -> Result<String, ChatError> {
        const TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";
        let Some(last) = messages.last() else {
            return Err(ChatError::Continue("the conversation is empty".into()));
        };
        if !self.source.contains("content") {
            return Err(ChatError::Continue(
                "the template reads no `content` to continue".into(),
            ));
        }
        let mut marked = messages.to_vec();
        if let Some(m) = marked.last_mut() {
            m.content.push_str(TAG);
        }
        let rendered = self.render(&marked, false)?;
        let tag = TAG.trim_end();
        let (Some(at), true) = (
            rendered.rfind(tag),
            rendered.contains(py_strip(&last.content)),
        ) else {
            return Err(ChatError::Continue(format!(
                "the final turn does not appear in the rendered conversation: {}",
                py_strip(&last.content)
            )));
        };
        Ok(if rendered[at..].starts_with(TAG) {
            rendered[..at].to_string()
        } else {
            rendered[..at]
                .trim_end_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
                .to_string()
        })
    }
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// Prefix of the errors `raise_exception` makes.
const RAISED: &str = "raise_exception: ";

/// The message a template gave `raise_exception`, if `e` came from it.
fn raised(e: &minijinja::Error) -> Option<String> {
    e.detail()?.strip_prefix(RAISED).map(str::to_string)
}

/// minijinja's error with its line, and the errors that caused it.
fn describe(e: &minijinja::Error) -> String {
    let mut out = match (e.detail(), e.line()) {
        (Some(d), Some(line)) => format!("{} (line {line}): {d}", e.kind()),
        (Some(d), None) => format!("{}: {d}", e.kind()),
        (None, Some(line)) => format!("{} (line {line})", e.kind()),
        (None, None) => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!("; {s}"));
        source = s.source();
    }
    out
}

/// The environment transformers' `_compile_jinja_template` builds.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{RAISED}{message}"),
            ))
        },
    );
    env.add_function("strftime_now", |format: String| {
        chrono::Local::now().format(&format).to_string()
    });
    env.add_filter("tojson", tojson);
    env
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=…, separators=…, sort_keys=…)`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(usize::try_from(v).unwrap_or(0)),
        }),
    };
    let (item, key) = match separators.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        _ if indent.is_some() => (",".into(), ": ".into()),
        _ => (", ".into(), ": ".into()),
    };
    let dumps = Dumps {
        indent,
        item,
        key,
        sort_keys: sort_keys.unwrap_or(false),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    let mut out = String::new();
    dumps.write(&value, 0, &mut out)?;
    Ok(Value::from(out))
}

/// `json.dumps`' layout.
struct Dumps {
    indent: Option<String>,
    item: String,
    key: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

impl Dumps {
    fn newline(&self, depth: usize, out: &mut String) {
        if let Some(indent) = &self.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(indent);
            }
        }
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && !c.is_ascii()) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// `v` in keys' and items' own order (maps keep the order they were written in).
    fn write(&self, v: &Value, depth: usize, out: &mut String) -> Result<(), minijinja::Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => match (v.as_i64(), f64::try_from(v.clone())) {
                (Some(i), _) if !v.to_string().contains(['.', 'e', 'E']) => {
                    out.push_str(&i.to_string())
                }
                // Python writes floats with a decimal point: 2.0, not 2.
                (_, Ok(f)) if f.fract() == 0.0 && f.is_finite() && f.abs() < 1e16 => {
                    out.push_str(&format!("{f:.1}"))
                }
                _ => out.push_str(&v.to_string()),
            },
            ValueKind::String => self.string(v.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item);
                    }
                    self.newline(depth + 1, out);
                    self.write(item, depth + 1, out)?;
                }
                self.newline(depth, out);
                out.push(']');
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if self.sort_keys {
                    keys.sort();
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item);
                    }
                    self.newline(depth + 1, out);
                    self.string(&k.to_string(), out);
                    out.push_str(&self.key);
                    self.write(&v.get_item(k)?, depth + 1, out)?;
                }
                self.newline(depth, out);
                out.push('}');
            }
            _ => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: {} is not JSON", v.kind()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[Message], generation: bool) -> Result<String, ChatError> {
        let tokens = BTreeMap::from([
            ("bos_token".to_string(), "<s>".to_string()),
            ("eos_token".to_string(), "</s>".to_string()),
        ]);
        ChatTemplate::new(source, "test.jinja", tokens).render(messages, generation)
    }

    #[test]
    fn tojson_writes_as_pythons_json_dumps() {
        let got = render(
            r#"{{ {"b": [1, 2.0, "æ\"<>"], "a": none} | tojson }}|{{ [1] | tojson(indent=2) }}|{{ {"b": 1, "a": 2} | tojson(sort_keys=true, separators=[",", ":"]) }}"#,
            &[],
            false,
        )
        .unwrap();
        assert_eq!(
            got,
            "{\"b\": [1, 2.0, \"æ\\\"<>\"], \"a\": null}|[\n  1\n]|{\"a\":2,\"b\":1}"
        );
    }

    #[test]
    fn raise_exception_gives_its_message() {
        let e = render("{{ raise_exception('roles must alternate') }}", &[], false).unwrap_err();
        assert!(
            matches!(&e, ChatError::Raised(m) if m == "roles must alternate"),
            "{e}"
        );
    }

    #[test]
    fn strftime_now_formats_todays_date() {
        let got = render("{{ strftime_now('%Y-%m-%d') }}", &[], false).unwrap();
        assert_eq!(got, chrono::Local::now().format("%Y-%m-%d").to_string());
    }

    #[test]
    fn a_template_that_is_not_jinja_names_its_file_and_line() {
        let e = render("{% for m in messages %}\n{{ m.content }", &[], false).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with("test.jinja: the chat template is not valid Jinja"),
            "{e}"
        );
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn the_default_of_named_templates_and_the_jinja_file_are_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(ChatTemplate::from_dir(d.path()).unwrap().is_none());
        let config = serde_json::json!({
            "bos_token": {"content": "<|begin_of_text|>", "lstrip": false},
            "eos_token": "<|eot_id|>",
            "chat_template": [
                {"name": "tool_use", "template": "tools"},
                {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}"}
            ]
        });
        std::fs::write(d.path().join("tokenizer_config.json"), config.to_string()).unwrap();
        let t = ChatTemplate::from_dir(d.path()).unwrap().unwrap();
        assert_eq!(
            t.render(&[Message::new("user", "hei")], false).unwrap(),
            "<|begin_of_text|>hei"
        );
        std::fs::write(d.path().join("chat_template.jinja"), "{{ eos_token }}\n").unwrap();
        let t = ChatTemplate::from_dir(d.path()).unwrap().unwrap();
        // Jinja drops a template's one trailing newline, as transformers' does.
        assert_eq!(t.render(&[], false).unwrap(), "<|eot_id|>");
    }
}
