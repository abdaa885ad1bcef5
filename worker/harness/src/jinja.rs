//! Jinja as lm-eval renders task templates (`lm_eval.utils.apply_template`): an environment
//! with `StrictUndefined` and `keep_trailing_newline`, the `regex_replace` filter, Python's
//! methods on strings, lists and dicts, and values printed as Python's `str()` prints them.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value, ValueKind, from_args};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use serde_json::Value as Json;

use crate::python;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(methods);
        env.set_formatter(|out, _state, value| {
            let mut s = String::new();
            python::str_of(value, &mut s);
            out.write_str(&s).map_err(Error::from)
        });
        env.add_filter("regex_replace", regex_replace);
        env
    })
}

/// Python methods: `list.index` here, the rest from minijinja-contrib's `pycompat`.
fn methods(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    if method == "index" && value.kind() == ValueKind::Seq {
        let (what,): (&Value,) = from_args(args)?;
        for (i, item) in value.try_iter()?.enumerate() {
            if item == *what {
                return Ok(Value::from(i));
            }
        }
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} is not in list"),
        ));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// `re.sub(pattern, repl, string, count)`, with Python's `\1` and `\g<name>` references.
fn regex_replace(
    s: String,
    pattern: String,
    repl: String,
    count: Option<usize>,
) -> Result<String, Error> {
    let re = fancy_regex::Regex::new(&pattern)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("regex_replace: {e}")))?;
    let repl = python_replacement(&repl);
    let limit = count.unwrap_or(0);
    Ok(re.replacen(&s, limit, repl.as_str()).into_owned())
}

/// A Python replacement string in the regex crate's syntax.
fn python_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `apply_template(template, doc)`: the template rendered with the document's fields.
pub fn render(template: &str, doc: &Json) -> Result<String, String> {
    let tmpl = env()
        .template_from_str(template)
        .map_err(|e| describe(&e))?;
    tmpl.render(Value::from(Serde(doc)))
        .map_err(|e| describe(&e))
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_lm_eval_does() {
        let doc = json!({"question": "Hva er hovedstaden?", "choices": {"label": ["A", "B"], "text": ["Oslo", "Bergen"]}, "answer": "B", "n": 2, "flag": true});
        assert_eq!(
            render("{{choices.label.index(answer)}}", &doc).unwrap(),
            "1"
        );
        assert_eq!(
            render("{{choices.text}}", &doc).unwrap(),
            "['Oslo', 'Bergen']"
        );
        assert_eq!(
            render("Spørsmål: {{question}}\n", &doc).unwrap(),
            "Spørsmål: Hva er hovedstaden?\n"
        );
        assert_eq!(
            render(
                "{{flag}} {{n}} {{none}}",
                &json!({"flag": true, "n": 2, "none": null})
            )
            .unwrap(),
            "True 2 None"
        );
        assert_eq!(
            render(
                "{{question | regex_replace('(\\w+)stad(\\w+)', '\\\\2-\\\\1')}}",
                &doc
            )
            .unwrap(),
            "Hva er en-hoved?"
        );
        assert!(
            render("{{missing}}", &doc)
                .unwrap_err()
                .contains("undefined")
        );
        assert_eq!(
            render("{{question.split()[0].upper()}}", &doc).unwrap(),
            "HVA"
        );
    }
}
