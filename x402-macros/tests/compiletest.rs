//! trybuild tests: `tests/ui/<topic>/<mistake>.rs` must fail with the `.stderr` beside it, and
//! `tests/pass/*.rs` must compile and run (each `main` asserts on the generated `RouteSpec`).
//!
//! The `.stderr` files are rustc 1.95 (stable) output; another compiler may render them
//! differently. Regenerate with `TRYBUILD=overwrite cargo test -p x402-macros --test
//! compiletest` and review the diff; run one case with `-- ui trybuild=<name>.rs`.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/**/*.rs");
}

#[test]
fn pass() {
    trybuild::TestCases::new().pass("tests/pass/*.rs");
}
