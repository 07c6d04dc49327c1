//! A reqwest client that pays x402 `402 Payment Required` responses by itself.
//!
//! [`X402Middleware`] is a [`reqwest_middleware::Middleware`]. When a request meets a 402 it
//!
//! 1. reads the challenge: the v2 `PAYMENT-REQUIRED` header, or (without one) a v1 JSON body;
//! 2. keeps the `exact` offers on networks and tokens it knows, applies your preferred
//!    networks and tokens, then takes the cheapest;
//! 3. checks the per-request cap and the total budget, then asks your approval hook;
//! 4. signs: on EVM chains an EIP-3009 (or Permit2) authorization with your
//!    [`PaymentSigner`] (a local key, or any alloy signer with the `alloy` feature); on Solana
//!    a transaction with your [`SolanaPaymentSigner`] (feature `svm`: `x402_svm::SolanaWallet`);
//! 5. sends the request once more with `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1), and
//!    returns the answer with a [`PaymentRecord`] (including the decoded settlement receipt)
//!    in its extensions.
//!
//! A refusal at steps 2–3 happens before anything is signed and fails the request with an
//! [`X402Error`] that lists every offer and why it was not taken.
//!
//! It never pays twice for one logical request: when a paid request gets no answer (a
//! dropped connection) or is not settled, its signed authorization is kept, and sending the
//! same request again (by a retry middleware or by you) reuses it; see [`PaymentKey`]. It also
//! keeps [entitlement tokens](entitlement) servers return and shows them on later requests.
//!
//! ```no_run
//! use reqwest_x402::{PaymentResponseExt, X402Middleware};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let signer = reqwest_x402::key_from_env("X402_PRIVATE_KEY")?;
//! let x402 = X402Middleware::builder(signer)
//!     .max_per_request("$0.05") // default: $0.10
//!     .budget("$1")
//!     .build()?;
//! let client = x402.client()?; // reqwest + cookie store + this middleware
//!
//! let response = client.get("https://api.example.com/weather").send().await?;
//! if let Some(payment) = response.payment() {
//!     eprintln!("paid {}", payment.summary());
//! }
//! println!("{}", response.text().await?);
//! for payment in x402.history() {
//!     println!("{} {} {}", payment.url, payment.amount_display(), payment.status);
//! }
//! # Ok(()) }
//! ```
//!
//! With your own reqwest client and other middleware (put a retry middleware before this one
//! so its retries pass through it; they reuse the signed authorization):
//!
//! ```no_run
//! # fn demo(x402: reqwest_x402::X402Middleware) -> Result<(), reqwest::Error> {
//! let client = reqwest_middleware::ClientBuilder::new(
//!     reqwest::Client::builder().cookie_store(true).build()?,
//! )
//! .with(x402)
//! .build();
//! # let _ = client; Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod entitlement;
pub mod hooks;
mod middleware;

pub use hooks::{AfterPayment, OnPaymentFailure, PaymentFailure};
pub use middleware::{
    PaymentResponseExt, X402Middleware, X402MiddlewareBuilder, payment_error, same_origin_redirects,
};
// The transport-independent half (offers, caps, budget, approval, signing, history) lives in
// `x402-client`, shared with `rmcp-x402`; its items are re-exported here under their old names.
#[cfg(feature = "alloy")]
pub use x402_client::AlloySigner;
pub use x402_client::{
    Approval, ApprovePayment, Challenge, ChallengeError, ConfigError, DEFAULT_MAX_PER_REQUEST,
    KeyError, KeyLoadError, LimitError, LimitUnit, LocalSigner, Payer, PaymentKey, PaymentProposal,
    PaymentRecord, PaymentSigner, PaymentStatus, Refusal, RefusalReason, SignerError,
    SmartWalletSigner, SolanaPaymentSigner, SolanaSignedPayment, X402Error, async_trait, challenge,
    key_from_env, key_from_hex, policy,
};
/// Solana payments (feature `svm`): [`x402_svm::SolanaWallet`] pays Solana offers.
#[cfg(feature = "svm")]
pub use x402_svm;
pub use {x402_client, x402_protocol};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
