//! x402-evm's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

mod evm;
mod permit2;
mod sending;
mod smart_wallets;
