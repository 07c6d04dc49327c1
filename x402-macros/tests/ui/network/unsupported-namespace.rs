//! A network outside the namespaces x402 pays on (EVM and Solana).
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "cosmos:cosmoshub-4")]
pub async fn weather(_payment: Payment) {}

fn main() {}
