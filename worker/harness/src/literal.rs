//! Python literals (`ast.literal_eval`): what lm-eval reads back from a rendered `doc_to_choice`
//! and what the Hub's CSV files hold (`str()` of a list of tuples, e.g. the `question_answer`
//! column of NO-Multi-QA-Sum): lists, tuples, dicts, strings with either quote and Python's
//! escapes, numbers, `True`/`False`/`None`. JSON arrays are read too.

use serde_json::Value;

/// Parse one literal; the error says at which character and what was expected.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        chars: text.char_indices().peekable(),
        text,
    };
    let v = p.value()?;
    p.skip_ws();
    match p.chars.peek() {
        None => Ok(v),
        Some(&(at, c)) => Err(format!(
            "unexpected `{c}` after the value at character {at}"
        )),
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            self.chars.next();
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        let Some(&(at, c)) = self.chars.peek() else {
            return Err("the text ends where a value was expected".into());
        };
        match c {
            '[' => self.sequence(']'),
            '(' => self.sequence(')'),
            '{' => self.dict(),
            '\'' | '"' => self.string().map(Value::String),
            _ if c == '-' || c.is_ascii_digit() => self.number(),
            _ if c.is_alphabetic() => {
                let word = self.word();
                match word.as_str() {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    _ => Err(format!("unknown name `{word}` at character {at}")),
                }
            }
            _ => Err(format!("unexpected `{c}` at character {at}")),
        }
    }

    fn sequence(&mut self, close: char) -> Result<Value, String> {
        self.chars.next();
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.chars.peek().is_some_and(|&(_, c)| c == close) {
                self.chars.next();
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.chars.next() {
                Some((_, ',')) => {}
                Some((_, c)) if c == close => return Ok(Value::Array(items)),
                Some((at, c)) => {
                    return Err(format!(
                        "expected `,` or `{close}` at character {at}, found `{c}`"
                    ));
                }
                None => return Err(format!("the text ends before the closing `{close}`")),
            }
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.chars.next();
        let mut map = serde_json::Map::new();
        loop {
            self.skip_ws();
            if self.chars.peek().is_some_and(|&(_, c)| c == '}') {
                self.chars.next();
                return Ok(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.skip_ws();
            match self.chars.next() {
                Some((_, ':')) => {}
                Some((at, c)) => {
                    return Err(format!("expected `:` at character {at}, found `{c}`"));
                }
                None => return Err("the text ends before the closing `}`".into()),
            }
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            match self.chars.next() {
                Some((_, ',')) => {}
                Some((_, '}')) => return Ok(Value::Object(map)),
                Some((at, c)) => {
                    return Err(format!(
                        "expected `,` or `}}` at character {at}, found `{c}`"
                    ));
                }
                None => return Err("the text ends before the closing `}`".into()),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let Some((start, quote)) = self.chars.next() else {
            return Err("expected a string".into());
        };
        let mut out = String::new();
        while let Some((at, c)) = self.chars.next() {
            match c {
                _ if c == quote => return Ok(out),
                '\\' => {
                    let Some((_, e)) = self.chars.next() else {
                        break;
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = (0..len)
                                .filter_map(|_| self.chars.next().map(|(_, c)| c))
                                .collect();
                            let ch = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    format!("bad escape `\\{e}{hex}` at character {at}")
                                })?;
                            out.push(ch);
                        }
                        other => {
                            // Python keeps unknown escapes as written.
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        Err(format!(
            "the string opened at character {start} is not closed"
        ))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.chars.peek().map_or(0, |&(i, _)| i);
        let mut end = start;
        while let Some(&(i, c)) = self.chars.peek() {
            if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                end = i + c.len_utf8();
                self.chars.next();
            } else {
                break;
            }
        }
        let s = &self.text[start..end];
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Value::from(i));
        }
        s.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{s}` at character {start} is not a number"))
    }

    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(&(_, c)) = self.chars.peek() {
            if c.is_alphanumeric() || c == '_' {
                w.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_python_lists_of_tuples() {
        let v = parse(
            r#"[('Hva heter han?', "Ola's bror"), ('Når?', 'I går\n'), (1, -2.5, True, None)]"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!([
                ["Hva heter han?", "Ola's bror"],
                ["Når?", "I går\n"],
                [1, -2.5, true, null]
            ])
        );
        assert_eq!(parse(r#"[["a", "b"],]"#).unwrap(), json!([["a", "b"]]));
        assert_eq!(parse(r"'\xe5\u00f8'").unwrap(), json!("åø"));
    }

    #[test]
    fn errors_say_where() {
        assert!(parse("[('a', 'b')").unwrap_err().contains("closing `]`"));
        assert!(parse("[('a' 'b')]").unwrap_err().contains("character 6"));
        assert!(parse("['a").unwrap_err().contains("not closed"));
        assert!(parse("[nan]").unwrap_err().contains("unknown name `nan`"));
    }
}
