//! Checked on every built-in network listed, not only the first.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

#[paid(price = "$0.0000001", network = ["eip155:31337", "base-sepolia"])]
pub async fn weather(_payment: Payment) {}

fn main() {}
