//! x402 payments on Solana: the `exact` scheme, paid with an SPL `TransferChecked` in a
//! transaction the payer signs and the facilitator co-signs as fee payer.
//!
//! - [`programs`] and [`wire`]: the programs a payment touches and the bytes it is made of.

pub mod programs;
pub mod wire;
