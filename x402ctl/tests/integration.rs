//! x402ctl's integration tests, as one test binary: every `tests/*.rs` file is a module here, so
//! they link once instead of once each. A new test file is declared below.

#[path = "../../integrations/reqwest/tests/support/server.rs"]
mod server;
mod support;

mod cli;
mod config;
mod dev;
mod discover;
mod facilitator;
mod mcp;
mod official;
mod pay_permit2;
mod payments;
mod serve;
mod serve_solana;
mod solana;
