//! reqwest-x402's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

mod support;

#[cfg(feature = "alloy")]
mod alloy;
mod entitlements;
mod hooks;
mod limits;
mod pay;
mod redirect;
mod retry;
