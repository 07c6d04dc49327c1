//! `protocol` is "v1" or "v2".
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", protocol = "v3")]
pub async fn weather(_payment: Payment) {}

fn main() {}
