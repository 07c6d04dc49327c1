//! x402-svm's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

mod gate;
mod keys;
#[cfg(feature = "litesvm")]
mod litesvm;
mod payer;
mod vectors;
