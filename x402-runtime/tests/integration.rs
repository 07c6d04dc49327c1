//! x402-runtime's integration tests, as one test binary: every `tests/*.rs` file is a module
//! here, so they link once instead of once each. A new test file is declared below.

mod common;
mod support;

mod bazaar_route;
mod discovery;
mod entitlement_store;
mod entitlements;
mod gate;
mod hooks;
mod http_facilitator;
mod http_response;
mod journal;
mod npm_extensions;
mod payment_ids;
mod paywall;
mod permit2_upto;
#[cfg(feature = "redis")]
mod redis_outage;
mod replay_store;
mod siwx;
