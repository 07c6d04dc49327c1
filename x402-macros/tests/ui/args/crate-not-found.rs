//! `crate = …` naming nothing: the compiler's error points at the literal.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", crate = "no_such_crate")]
pub async fn weather(_payment: Payment) {}

fn main() {}
