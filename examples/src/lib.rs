//! Shared pieces of the examples: the quickstart's paid API, so that tests (and `x402ctl`'s)
//! can start the very server the quickstart runs.

pub mod quickstart;
pub mod term;

/// The README's Rust examples, compiled as doc tests so they cannot drift from the code.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
