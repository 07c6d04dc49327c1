//! x402 payments on Solana: the `exact` scheme, paid with an SPL `TransferChecked` in a
//! transaction the payer signs and the facilitator co-signs as fee payer.
//!
//! - [`programs`] and [`wire`]: the programs a payment touches and the bytes it is made of.
//! - [`SvmSettler`]: settles for the embedded facilitator on any [`SvmChain`]: a JSON-RPC
//!   node ([`RpcChain`]) or, with the `litesvm` feature, an in-process LiteSVM
//!   (`LiteSvmChain`).

pub mod chain;
pub mod programs;
mod rpc;
mod settler;
pub mod wire;

#[cfg(feature = "litesvm")]
mod litesvm;

pub use chain::{ChainError, MintInfo, SvmChain, TransactionStatus};
#[cfg(feature = "litesvm")]
pub use litesvm::LiteSvmChain;
pub use rpc::RpcChain;
pub use settler::{FEE_PAYER_NOT_MANAGED, SIMULATION_FAILED, SvmSettler, TRANSACTION_FAILED};
