//! An amount that is not a decimal number.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "one USDC", network = "base")]
pub async fn weather(_payment: Payment) {}

fn main() {}
