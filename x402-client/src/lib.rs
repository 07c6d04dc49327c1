//! The transport-independent half of an x402 paying client.
//!
//! A client that pays x402 challenges does the same thing whatever carries the challenge
//! (an HTTP 402, an MCP tool's payment-required result): it
//!
//! 1. reads the challenge ([`Challenge`]), entry by entry;
//! 2. keeps the `exact` offers on networks and tokens it knows, applies preferred networks
//!    and tokens, then takes the cheapest ([`policy`]);
//! 3. checks the per-request cap and reserves the amount against the total budget, then asks
//!    the approval hook ([`ApprovePayment`]);
//! 4. signs: on EVM chains an EIP-3009 (or Permit2) authorization with a [`PaymentSigner`],
//!    checking that the signature recovers to the payer; on Solana a transaction with a
//!    [`SolanaPaymentSigner`] (`x402-svm`'s `SolanaWallet`);
//! 5. records the payment ([`PaymentRecord`]) in a history the transport updates with the
//!    server's answer.
//!
//! [`Payer`] does all of that and returns a [`SignedPayment`]: the `PaymentPayload` as JSON
//! and as a base64 header value. The transports only carry it: `reqwest-x402` in the
//! `PAYMENT-SIGNATURE` / `X-PAYMENT` header, `rmcp-x402` in `_meta["x402/payment"]`. Both
//! keep signed payments for a retry of the same request in a [`ReuseCache`], so a request is
//! never paid twice.
//!
//! ```
//! use x402_client::{Challenge, LocalSigner, Payer, X402Error};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let payer = Payer::builder(LocalSigner::random()).max_per_request("$0.05").build()?;
//! let challenge = Challenge::from_json(&serde_json::json!({
//!     "x402Version": 2,
//!     "resource": {"url": "mcp://tool/forecast"},
//!     "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": "10000",
//!                  "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
//!                  "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
//!                  "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}}]
//! }))?;
//! let signed = payer.pay("tools/call", "mcp://tool/forecast", &challenge).await?;
//! assert_eq!(signed.payload()["accepted"]["amount"], "10000");
//! assert_eq!(payer.history()[0].amount_display(), "0.01 USDC");
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod approve;
pub mod challenge;
mod error;
mod payer;
pub mod policy;
mod record;
mod reuse;
mod signer;

pub use approve::{Approval, ApprovePayment, PaymentProposal};
pub use async_trait::async_trait;
pub use challenge::{Challenge, ChallengeError};
pub use error::{ConfigError, X402Error};
pub use payer::{Payer, PayerBuilder, SignedPayment, unix_now};
pub use policy::{DEFAULT_MAX_PER_REQUEST, LimitError, LimitUnit, Refusal, RefusalReason};
pub use record::{PaymentRecord, PaymentStatus};
pub use reuse::{PaymentKey, RequestId, ReuseCache};
#[cfg(feature = "alloy")]
pub use signer::AlloySigner;
pub use signer::{
    KeyError, KeyLoadError, LocalSigner, PaymentSigner, SignerError, SmartWalletSigner,
    SolanaPaymentSigner, SolanaSignedPayment, key_from_env, key_from_hex,
};
pub use x402_protocol;
