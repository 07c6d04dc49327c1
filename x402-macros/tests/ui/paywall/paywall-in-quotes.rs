//! `paywall` takes a bool literal, not a string.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", paywall = "false")]
pub async fn weather(_payment: Payment) {}

fn main() {}
