//! A constant where a literal is required.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

const DESCRIPTION: &str = "Current weather";

#[paid(price = "0.01 USDC", network = "base", description = DESCRIPTION)]
pub async fn weather(_payment: Payment) {}

fn main() {}
