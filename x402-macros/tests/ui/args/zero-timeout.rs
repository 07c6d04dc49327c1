//! A zero `max_timeout_seconds`.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", max_timeout_seconds = 0)]
pub async fn weather(_payment: Payment) {}

fn main() {}
