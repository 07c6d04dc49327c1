//! A Solana network.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")]
pub async fn weather(_payment: Payment) {}

fn main() {}
