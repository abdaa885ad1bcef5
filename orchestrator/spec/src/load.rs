//! Reading TOML spec files into typed specs with precise error locations.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::SpecError;

/// Read and deserialize a TOML file; unknown keys are rejected by the spec types.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::file(
            path,
            format!("cannot read the file: {e}"),
            "check the path; paths are relative to the current directory",
        )
    })?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Deserialize TOML text; the error carries line:column, the key path and a fix.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, SpecError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| {
        SpecError::at(
            path,
            text,
            e.span(),
            "",
            format!("malformed TOML: {}", e.message().trim()),
            "fix the TOML syntax at this place (https://toml.io)",
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        // `Spanned<T>` values add a private segment to the path; it names nothing a user wrote.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = e.into_inner();
        let message = readable(inner.message().trim());
        let key = if key == "." { String::new() } else { key };
        SpecError::at(
            path,
            text,
            inner.span(),
            key,
            message.clone(),
            fix_for(&message),
        )
    })
}

/// serde's message in the words of the file: Rust type names become what they accept.
fn readable(message: &str) -> String {
    const TYPES: [(&str, &str); 12] = [
        ("u64", "a whole number ≥ 0"),
        ("u32", "a whole number ≥ 0"),
        ("u16", "a whole number ≥ 0"),
        ("u8", "a whole number ≥ 0"),
        ("usize", "a whole number ≥ 0"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
        ("a boolean", "true or false"),
        ("a string", "text in quotes"),
        ("a sequence", "a list in [brackets]"),
    ];
    let mut out = message.to_string();
    if let Some(at) = out.rfind(", expected ") {
        let expected = out[at + ", expected ".len()..].to_string();
        if let Some((_, words)) = TYPES.iter().find(|(t, _)| *t == expected) {
            out = format!("{}, expected {words}", &out[..at]);
        }
    }
    out.replace("invalid value: integer", "the number")
        .replace("invalid type: integer", "the number")
        .replace("invalid type: string", "the text")
        .replace("invalid type: floating point", "the number")
        .replace("invalid type: boolean", "the boolean")
}

fn fix_for(message: &str) -> String {
    if message.starts_with("unknown field") {
        "remove this key or rename it to one of the expected keys".into()
    } else if message.starts_with("missing field") {
        "add the missing key".into()
    } else if message.starts_with("unknown variant") {
        "use one of the expected values".into()
    } else if message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("the ")
    {
        "give a value of the expected kind".into()
    } else {
        "correct the value".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    #[test]
    fn unknown_key_is_located_with_its_path() {
        let text = "name = \"a\"\n\n[[items]]\nsize = 1\n\n[[items]]\nsise = 2\n";
        let e = parse_toml::<Outer>(Path::new("f.toml"), text).unwrap_err();
        assert_eq!(e.location, Some((7, 1)));
        assert!(e.key.starts_with("items[1]"), "{}", e.key);
        assert!(e.problem.contains("unknown field `sise`"), "{}", e.problem);
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse_toml::<Outer>(Path::new("f.toml"), "name = \"a\nx").unwrap_err();
        assert!(e.problem.starts_with("malformed TOML"), "{}", e.problem);
        assert!(e.location.is_some(), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse_toml::<Outer>(Path::new("f.toml"), "name = 3\n").unwrap_err();
        assert_eq!(e.key, "name");
        assert_eq!(e.location, Some((1, 8)));
        assert_eq!(e.problem, "the number `3`, expected text in quotes");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Sized {
        shard_size: Option<toml::Spanned<u64>>,
    }

    #[test]
    fn numbers_are_explained_without_rust_types_or_serde_internals() {
        let e = parse_toml::<Sized>(Path::new("f.toml"), "shard_size = -3\n").unwrap_err();
        assert_eq!(e.key, "shard_size");
        assert_eq!(e.problem, "the number `-3`, expected a whole number ≥ 0");
        let e = parse_toml::<Outer>(
            Path::new("f.toml"),
            "name = \"a\"\n[[items]]\nsize = \"big\"\n",
        )
        .unwrap_err();
        assert_eq!(e.problem, "the text \"big\", expected a whole number ≥ 0");
        assert!(!e.to_string().contains("u32") && !e.to_string().contains("serde"));
    }
}
