//! `prepay` is checked like `price`.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", prepay = "1")]
pub async fn weather(_payment: Payment) {}

fn main() {}
