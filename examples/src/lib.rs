//! Shared pieces of the examples: the quickstart's paid API and the MCP example's paid tools,
//! so that tests (and `x402ctl`'s) can start the very servers the examples run.

pub mod mcp;
pub mod quickstart;
pub mod term;

/// The README's Rust examples, compiled as doc tests so they cannot drift from the code.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
