//! How Jinja2 prints a value in lm-eval's templates: Python's `str()`, so a list prints as its
//! `repr()` (`"{{choices.text}}"` → `['a', 'b']`, which lm-eval then reads back with
//! `ast.literal_eval`, [`crate::literal`]).

use minijinja::value::{Value, ValueKind};

/// Python's `str(value)`: strings as they are, everything else as `repr`.
pub fn str_of(v: &Value, out: &mut String) {
    if let Some(s) = v.as_str() {
        out.push_str(s);
    } else {
        repr_of(v, out);
    }
}

/// Python's `str(value)` of a document's JSON value.
pub fn str_of_json(v: &serde_json::Value) -> String {
    let mut s = String::new();
    str_of(&Value::from(minijinja::value::Serde(v)), &mut s);
    s
}

/// Python's `repr(value)` for the values a document holds.
pub fn repr_of(v: &Value, out: &mut String) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::String => repr_str(v.as_str().unwrap_or_default(), out),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
                return;
            }
            let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
            out.push_str(&repr_float(f));
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = v.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr_of(&item, out);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = v.try_iter() {
                for (i, k) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    repr_of(&k, out);
                    out.push_str(": ");
                    repr_of(&v.get_item(&k).unwrap_or_default(), out);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

/// Python's float `repr`: the shortest text that reads back, `1.0` for whole numbers,
/// exponents from 1e16 and below 1e-4.
fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Python's `repr(str)`: single quotes unless the text holds one and no double quote;
/// backslashes, the quote, `\t \n \r` and unprintable characters escaped.
pub fn repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one character: not a control, format, separator (but the
/// space) or private-use character.
fn printable(c: char) -> bool {
    let n = c as u32;
    !(c.is_control()
        || matches!(n, 0xa0 | 0xad | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f
            | 0x205f..=0x2064 | 0x2066..=0x206f | 0x3000 | 0xfeff | 0xfff9..=0xfffb
            | 0xe000..=0xf8ff | 0x061c | 0x110bd | 0x1bca0..=0x1bca3 | 0xe0001 | 0xe0020..=0xe007f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(v: Value) -> String {
        let mut s = String::new();
        repr_of(&v, &mut s);
        s
    }

    // Expected texts are CPython 3.11's `repr`.
    #[test]
    fn prints_as_python_does() {
        assert_eq!(
            repr(Value::from(vec!["a", "b'c", "d\"e'"])),
            r#"['a', "b'c", 'd"e\'']"#
        );
        assert_eq!(repr(Value::from("tab\there\u{a0}ø")), r"'tab\there\xa0ø'");
        assert_eq!(repr(Value::from(1.0)), "1.0");
        assert_eq!(repr(Value::from(1e16)), "1e+16");
        assert_eq!(repr(Value::from(0.00001)), "1e-05");
        assert_eq!(repr(Value::from(3)), "3");
        assert_eq!(repr(Value::from(true)), "True");
        assert_eq!(repr(Value::from(())), "None");
    }

    #[test]
    fn literal_eval_reads_back_what_repr_printed() {
        for items in [
            vec!["Ja", "Nei"],
            vec!["b'c", "d\"e'", "tab\t\\", "\u{a0}æøå"],
        ] {
            let text = repr(Value::from(items.clone()));
            assert_eq!(
                crate::literal::parse(&text),
                Ok(serde_json::json!(items)),
                "{text}"
            );
        }
        assert_eq!(
            crate::literal::parse("{'a': [1.5, None]}"),
            Ok(serde_json::json!({"a": [1.5, null]}))
        );
    }
}
