//! The framework-free x402 payment runtime.
//!
//! Everything with behaviour lives here, so that the axum, actix-web and Rocket integrations
//! only translate requests and responses:
//!
//! - [`Gate::evaluate`] turns a request to a paid route into a [`Decision`]: a 402
//!   challenge (v1 JSON body *and* v2 `PAYMENT-REQUIRED` header), a verified payment
//!   (settlement pending), or a rejection with a reason code;
//! - [`Gate::finish`] settles after the handler (only if it succeeded) and adds the receipt;
//! - [`facilitator`]: the [`Facilitator`] trait, an HTTP client and an embedded facilitator
//!   with a dev ledger;
//! - [`config`]: one configuration format (a TOML file, `X402_CONFIG`) for networks, tokens,
//!   RPC endpoints, signers, servers and the facilitator;
//! - [`store`]: replay protection shared by all replicas;
//! - [`journal`]: the durable record of every payment and its state changes (memory, SQLite,
//!   Postgres);
//! - [`response`]: the one mapping from decisions and errors to status, headers and JSON;
//! - [`siwx`]: sign-in-with-x challenges and verification (returning payers);
//! - [`discovery`]: the Bazaar catalogue, its endpoints and a client;
//! - [`hooks`]: lifecycle hooks around verification and settlement, failing closed;
//! - [`paywall`]: the HTML page browsers get instead of a JSON 402, when enabled.
//!
//! # Cargo features
//!
//! - `secp256k1`: recover payment signers with libsecp256k1 (C) instead of `k256`.
//!
//! ```
//! use x402_runtime::{Decision, Gate, RequestView, RouteSpec};
//!
//! struct Get(&'static str);
//! impl RequestView for Get {
//!     fn method(&self) -> &str { "GET" }
//!     fn path_and_query(&self) -> &str { self.0 }
//!     fn header(&self, name: &str) -> Option<&str> {
//!         name.eq_ignore_ascii_case("host").then_some("api.example.com")
//!     }
//! }
//!
//! static WEATHER: RouteSpec = RouteSpec::fixed("$0.01").networks(&["base-sepolia"]);
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let gate = Gate::builder()
//!     .embedded_facilitator()
//!     .pay_to("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
//!     .build()?;
//! let Decision::Challenge(challenge) = gate.evaluate(&Get("/weather"), &WEATHER).await else {
//!     unreachable!("no payment was sent");
//! };
//! let response = challenge.to_response();
//! assert_eq!(response.status, 402);
//! assert!(response.header("payment-required").is_some());
//! # Ok::<(), x402_runtime::ConfigError>(())
//! # }).unwrap();
//! ```
//!
//! # Cargo features
//!
//! - `redis`: `store::RedisReplayStore`, replay protection in Redis, so that every replica
//!   behind a load balancer refuses an authorization another one already accepted. It pulls in
//!   the [`redis`](https://docs.rs/redis) crate (tokio and its connection manager only), which
//!   is re-exported as `x402_runtime::redis`. Without it, the default
//!   [`MemoryReplayStore`](store::MemoryReplayStore) protects a single process.
//! - `siws`: sign-in-with-x for Solana wallets (ed25519 signatures, base58 keys).
//! - `secp256k1`: recover payment signers with libsecp256k1 (C) instead of the pure-Rust
//!   `k256`.
//! - `sqlite`: `journal::SqliteJournal`, the payment journal in a SQLite file (bundled SQLite
//!   via [`sqlx`](https://docs.rs/sqlx), re-exported as `x402_runtime::sqlx`).
//! - `postgres`: `journal::PostgresJournal`, the payment journal in Postgres, for several
//!   replicas (sqlx; TLS by rustls).
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod builder;
mod challenge;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod entitlement;
pub mod facilitator;
mod gate;
pub mod hooks;
pub mod journal;
mod payment;
pub mod paywall;
mod rejection;
mod request;
pub mod response;
mod route;
pub mod scheme;
pub mod siwx;
mod slot;
pub mod store;

#[doc(hidden)]
pub mod __private;

/// The `redis` crate this runtime is built with, for configuring a connection manager to give
/// to [`RedisReplayStore::from_manager`](store::RedisReplayStore::from_manager).
#[cfg(feature = "redis")]
pub use ::redis;
/// The `sqlx` crate the SQL journals are built with, for configuring their pools and
/// connections.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use ::sqlx;
pub use builder::{ConfigError, DEFAULT_KEEP_RESPONSE_BYTES, RouteCheck, X402Builder};
pub use challenge::{AcceptOption, Challenge};
pub use facilitator::{Facilitator, FacilitatorError};
pub use gate::redeem::DEFAULT_GRANT_LIFETIME;
pub use gate::{
    Admission, Completion, Decision, Gate, PaymentIds, Pending, ReconcileReport, ShutdownReport,
};
pub use payment::{Access, ChargeError, Grant, PaymentInfo};
pub use rejection::Rejection;
pub use request::{RequestView, ResourcePolicy};
pub use response::{HandlerResponse, ResponseParts};
pub use route::{
    AccessSpec, DEFAULT_MAX_TIMEOUT_SECONDS, DynamicPrice, PaidRoute, PriceSpec, RegisteredRoute,
    RouteSpec, SettleMode, registered_routes,
};
pub use slot::SettlementSlot;
#[doc(inline)]
pub use x402_macros::paid;
pub use x402_protocol::{
    self as protocol, Address, ChainAddress, Family, Price, PriceError, ProtocolVersion, Reason,
    U256,
};
