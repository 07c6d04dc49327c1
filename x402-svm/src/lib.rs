//! x402 payments on Solana: the `exact` scheme, paid with an SPL `TransferChecked` in a
//! transaction the payer signs and the facilitator co-signs as fee payer.
//!
//! - [`programs`] and [`wire`]: the programs a payment touches and the bytes it is made of.
//! - [`verify`]: the offline checks of a payment (terms, transaction layout, signature, key).
//! - [`scheme`]: [`ExactSvm`], the `exact` scheme for the x402 runtime.
//! - [`client`]: [`build_payment`], the transaction the official client builds.

pub mod client;
pub mod programs;
pub mod scheme;
pub mod verify;
pub mod wire;

pub use client::build_payment;
pub use scheme::ExactSvm;
pub use verify::{SvmPayment, SvmTerms};
