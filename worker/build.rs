//! Marks the tests that need the authors' released outputs or NLTK's Punkt model as ignored
//! where those are absent (see `test_support::build`).

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    test_support::build::emit_test_cfgs(&repo, false);
    test_support::build::emit_punkt_cfg();
}
