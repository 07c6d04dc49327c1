//! A duration with a unit #[paid] does not know.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", access = "1 hour")]
pub async fn weather(_payment: Payment) {}

fn main() {}
