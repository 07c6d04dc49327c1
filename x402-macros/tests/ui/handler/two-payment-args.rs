//! Two `Payment` parameters: the error is on the second.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base")]
pub async fn weather(_first: Payment, _second: Payment) {}

fn main() {}
