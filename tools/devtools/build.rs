//! Marks the tests that need PostgreSQL as ignored where it is absent (see `test_support::build`).

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    test_support::build::emit_test_cfgs(&repo, true);
}
