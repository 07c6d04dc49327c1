//! `paywall = true` only restates the default and reads as if it turned a paywall on: refused,
//! with what to write instead.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", paywall = true)]
pub async fn weather(_payment: Payment) {}

fn main() {}
