//! A `bazaar(…)` key that does not exist, with a suggestion.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", bazaar(ouput = r#"{"temperature": 21}"#))]
pub async fn weather(_payment: Payment) {}

fn main() {}
