//! Every template of tests/fixtures/chat renders every conversation byte for byte as
//! transformers' `apply_chat_template(tokenize=False)` did (recorded by
//! tools/parity/make_chat_fixtures.py), and refuses where it raised, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly where a step fails

use std::collections::BTreeMap;
use std::path::PathBuf;

use chat::{ChatError, ChatTemplate, Message};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chat")
}

fn read(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

#[test]
fn renders_equal_transformers_byte_for_byte() {
    let reference = read("reference.json");
    let conversations: BTreeMap<String, Vec<Message>> =
        serde_json::from_value(read("conversations.json")).unwrap();
    let tokens: BTreeMap<String, String> =
        serde_json::from_value(reference["special_tokens"].clone()).unwrap();
    let renders = reference["renders"].as_object().unwrap();
    let mut checked = 0;
    for (key, want) in renders {
        let mut parts = key.split('/');
        let (template, conversation, generation) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap() == "gen",
        );
        let path = fixtures()
            .join("templates")
            .join(format!("{template}.jinja"));
        let source = std::fs::read_to_string(&path).unwrap();
        let t = ChatTemplate::new(source, path, tokens.clone());
        let got = t.render(&conversations[conversation], generation);
        match (want.get("text").and_then(|t| t.as_str()), got) {
            (Some(text), Ok(got)) => assert_eq!(got, text, "{key}"),
            (None, Err(ChatError::Raised(message))) => {
                assert_eq!(message, want["error"].as_str().unwrap(), "{key}")
            }
            (want, got) => panic!("{key}: transformers gave {want:?}, nlebench {got:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 40, "every recorded render was checked");
}
