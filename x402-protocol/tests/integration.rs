//! x402-protocol's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

mod official_vectors;
mod payment_identifier_vectors;
mod permit2_vectors;
mod siwx_vectors;
mod smart_wallet;
