//! A JSON literal that does not parse, pointed at.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", bazaar(input = r#"{"city": Oslo}"#))]
pub async fn weather(_payment: Payment) {}

fn main() {}
