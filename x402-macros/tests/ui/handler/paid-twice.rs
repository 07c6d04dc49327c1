//! Two #[paid] attributes on one handler.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base")]
#[paid(price = "0.02 USDC", network = "base")]
pub async fn weather(_payment: Payment) {}

fn main() {}
