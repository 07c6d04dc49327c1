//! x402 payments on Solana: the `exact` scheme, paid with an SPL `TransferChecked` in a
//! transaction the payer signs and the facilitator co-signs as fee payer.
//!
//! - [`programs`] and [`wire`]: the programs a payment touches and the bytes it is made of.
//! - [`verify`]: the offline checks of a payment (terms, transaction layout, signature, key).
//! - [`scheme`]: [`ExactSvm`], the `exact` scheme for the x402 runtime.
//! - [`client`]: [`build_payment`], the transaction the official client builds.
//! - [`wallet`]: [`SolanaWallet`], which pays Solana offers for `x402-client`'s `Payer`, and
//!   keypair loading (base58 exports, `id.json`).
//! - [`SvmSettler`]: settles for the embedded facilitator on any [`SvmChain`]: a JSON-RPC
//!   node ([`RpcChain`]) or, with the `litesvm` feature, an in-process LiteSVM
//!   (`LiteSvmChain`).

pub mod chain;
pub mod client;
pub mod programs;
mod rpc;
pub mod scheme;
mod settler;
pub mod verify;
pub mod wallet;
pub mod wire;

#[cfg(feature = "litesvm")]
mod litesvm;

pub use chain::{ChainError, MintInfo, SvmChain, TransactionStatus};
pub use client::build_payment;
#[cfg(feature = "litesvm")]
pub use litesvm::LiteSvmChain;
pub use rpc::RpcChain;
pub use scheme::ExactSvm;
pub use settler::{FEE_PAYER_NOT_MANAGED, SIMULATION_FAILED, SvmSettler, TRANSACTION_FAILED};
pub use verify::{SvmPayment, SvmTerms};
pub use wallet::{KeypairError, SolanaWallet};
