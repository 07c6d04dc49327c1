//! Test support shared by several test files (each includes it with `mod support;`):
//!
//! - [`replay_store`]: the conformance suite every `ReplayStore` backend must pass, and the
//!   `replay_store_conformance!` macro that runs it against one backend;
//! - [`entitlement_store`]: the same for `EntitlementStore` backends
//!   (`entitlement_store_conformance!`);
//! - [`journal`]: the same for `Journal` backends (`journal_conformance!`);
//! - [`backends`]: real backends for tests — the Redis that `scripts/test` starts
//!   (`X402_REDIS_URL`), a `redis-server` process a test owns, and the skip-or-fail rule
//!   (`X402_REQUIRE_BACKENDS=1`).
//!
//! Gate helpers (requests, a funded payer, signing) are in `tests/common`.

// Each test binary uses only part of this module.
#![allow(dead_code, unused_imports, unused_macros)]

pub(crate) use x402_test_support as backends;
pub(crate) mod entitlement_store;
pub(crate) mod journal;
pub(crate) mod replay_store;
