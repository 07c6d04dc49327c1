//! A pricing function of the wrong type: the compiler checks it, at the path.
use x402_runtime::paid;

/// Stands in for an integration's `Payment<T>`.
pub struct Payment<T = ()>(pub std::marker::PhantomData<T>);

fn by_size(_path: &str) -> u64 {
    1
}

#[paid(price = by_size, network = "base")]
pub async fn weather(_payment: Payment) {}

fn main() {}
