//! The zero address as recipient.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "0.01 USDC", network = "base", pay_to = "0x0000000000000000000000000000000000000000")]
pub async fn weather(_payment: Payment) {}

fn main() {}
