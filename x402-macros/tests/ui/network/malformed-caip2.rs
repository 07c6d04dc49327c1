//! A CAIP-2 id whose chain id is not decimal.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "eip155:0x2105")]
pub async fn weather(_payment: Payment) {}

fn main() {}
