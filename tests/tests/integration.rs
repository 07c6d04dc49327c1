//! x402-tests's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

mod browser;

mod client;
mod crash;
mod metered;
mod official_eip2612;
mod official_permit2;
mod onchain;
mod payment_identifier;
mod paywall_browser;
mod replicas;
mod scenarios;
mod siwx;
mod solana;
