//! Marks the end-to-end tests that need PostgreSQL and Redis, or the authors' released outputs,
//! as ignored where those are absent (see `test_support::build`).

fn main() {
    test_support::build::emit_test_cfgs(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), true);
}
