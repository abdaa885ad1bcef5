//! Prompt templates: text with `{column}` placeholders, optionally passed through a filter
//! (`{article|first_words:10}`, `{prompt|last_turn:Human:}`).
//!
//! Parsing is separate from rendering so a task file's template is checked when the file is
//! read (unknown filter, bad argument) and rendered later from any row.

/// A filter applied to a placeholder's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The first `n` whitespace-separated words, joined by single spaces.
    FirstWords(usize),
    /// The text after the last occurrence of the marker, up to the next turn marker
    /// (`Human:` or `Robot:`) if one follows, trimmed.
    LastTurn(String),
}

/// Turn markers of the NorGLM dialogue format.
const TURN_MARKERS: [&str; 2] = ["Human:", "Robot:"];

impl Filter {
    fn parse(spec: &str) -> Result<Filter, String> {
        let (name, arg) = spec.split_once(':').unwrap_or((spec, ""));
        match name {
            "first_words" => arg
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .map(Filter::FirstWords)
                .ok_or_else(|| {
                    format!(
                        "`first_words` needs a whole number ≥ 1, e.g. `first_words:10`; got `{arg}`"
                    )
                }),
            "last_turn" if !arg.is_empty() => Ok(Filter::LastTurn(arg.to_string())),
            "last_turn" => Err("`last_turn` needs the turn marker, e.g. `last_turn:Human:`".into()),
            other => Err(format!(
                "unknown filter `{other}`; known filters: first_words:N, last_turn:MARKER"
            )),
        }
    }

    /// The filtered value.
    pub fn apply(&self, value: &str) -> String {
        match self {
            Filter::FirstWords(n) => value
                .split_whitespace()
                .take(*n)
                .collect::<Vec<_>>()
                .join(" "),
            Filter::LastTurn(marker) => {
                let Some(at) = value.rfind(marker.as_str()) else {
                    return value.trim().to_string();
                };
                let rest = &value[at + marker.len()..];
                let end = TURN_MARKERS
                    .iter()
                    .filter_map(|m| rest.find(m))
                    .min()
                    .unwrap_or(rest.len());
                rest[..end].trim().to_string()
            }
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        column: String,
        filter: Option<Filter>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parse `{column}` and `{column|filter[:arg]}` placeholders. Braces that do not enclose
    /// a column name (letters, digits, `_`) are kept as text.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            literal.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                literal.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (column, filter) = inner.split_once('|').unwrap_or((inner, ""));
            if column.is_empty() || !column.chars().all(|c| c.is_alphanumeric() || c == '_') {
                literal.push('{');
                rest = after;
                continue;
            }
            let filter = if filter.is_empty() && !inner.contains('|') {
                None
            } else {
                Some(Filter::parse(filter).map_err(|e| format!("in `{{{inner}}}`: {e}"))?)
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field {
                column: column.to_string(),
                filter,
            });
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// The columns the placeholders read, in order (repeats included).
    pub fn columns(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field { column, .. } => Some(column.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// The text with each placeholder replaced by `value(column)`, filtered.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { column, filter } => {
                    let v = value(column);
                    match filter {
                        Some(f) => out.push_str(&f.apply(&v)),
                        None => out.push_str(&v),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, f: impl Fn(&str) -> String) -> String {
        Template::parse(t).unwrap().render(f)
    }

    #[test]
    fn placeholders_filters_and_literal_braces() {
        let t = Template::parse("{a} {b|first_words:2} {not a field} {}").unwrap();
        assert_eq!(t.columns(), ["a", "b"]);
        let out = t.render(|c| {
            if c == "a" {
                "x".into()
            } else {
                "one  two three".into()
            }
        });
        assert_eq!(out, "x one two {not a field} {}");
    }

    #[test]
    fn last_turn_keeps_the_last_marked_turn_only() {
        let dialogue = "Human: hei Robot: hallo Human: hvordan går det? Robot:";
        let out = render("Human: {p|last_turn:Human:} Robot: |||\n", |_| {
            dialogue.into()
        });
        assert_eq!(out, "Human: hvordan går det? Robot: |||\n");
        // No marker: the whole text, trimmed.
        assert_eq!(
            render("{p|last_turn:Human:}", |_| " bare tekst ".into()),
            "bare tekst"
        );
    }

    #[test]
    fn bad_filters_are_explained() {
        let e = Template::parse("{a|first_words:0}").unwrap_err();
        assert!(e.contains("whole number ≥ 1"), "{e}");
        let e = Template::parse("{a|shout}").unwrap_err();
        assert!(e.contains("unknown filter `shout`"), "{e}");
        let e = Template::parse("{a|}").unwrap_err();
        assert!(e.contains("unknown filter"), "{e}");
    }
}
